"""Writes of billing: admit an AI call, record what it cost, settle or release its reservation.

The turn (chats) calls, for every AI call on every surface:

    admission = admission_reserve(user=..., api_key=..., target=..., input_tokens=...,
                                  max_output_tokens=...)      # 429 before any upstream call
    ...                                                        # the call itself
    usage_record_create(admission=admission, target=served, ...)   # exactly once, or
    admission_release(admission=admission)                     # if the provider was never called

Amounts are reserved and settled on `QuotaCounter` rows with conditional UPDATEs, so
concurrent calls cannot overspend a budget; the reservation row is deleted when it is
settled or released, so neither can happen twice.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction

from accounts.models import ApiKey, User
from billing import periods
from billing.errors import InsufficientQuota
from billing.models import (
    ApiKeyQuota,
    CallKind,
    DailyUsage,
    Outcome,
    QuotaCounter,
    Reservation,
    UsageRecord,
    UserQuota,
)
from billing.money import ZERO, call_cost
from billing.ratelimits import Counted, ai_call_count
from billing.selectors import NO_LIMITS, Limits, api_key_limits, user_limits
from llm.models import Model
from llm.types import ModelTarget
from nexus.lib.errors import ApiError


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted AI call: what was reserved, for whom, in which month. No ORM objects."""

    id: uuid.UUID
    user_id: int
    api_key_id: int | None
    month: date
    amount: Decimal
    tokens: int
    model_id: int
    created_at: datetime
    # Output tokens reserved so far, and the most the call may generate (its max_tokens):
    # admission_extend reserves more, a step at a time, as the reply streams.
    output_tokens: int = 0
    max_output_tokens: int = 0


# --- the statements of every call ---------------------------------------------------------
# Each AI call runs these few statements (reserve, then settle). Compiled by the ORM they
# cost about 1 ms of CPU each, more than the rest of the call's own work; written once as
# SQL that PostgreSQL and SQLite both speak, a quarter of that. Values go through their
# fields' own conversions to the database; decimals are CAST, as SQLite holds them as text
# and would compare them as text.


def _db(model: type[models.Model], field: str, value: Any) -> Any:
    return model._meta.get_field(field).get_db_prep_value(value, connection, prepared=False)  # type: ignore[union-attr]


def _execute(statement: str, params: Sequence[Any]) -> int:
    """Runs one statement; the number of rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


_COUNTERS = QuotaCounter._meta.db_table
_USER_ROW = "user_id = %s AND api_key_id IS NULL AND month = %s"
_KEY_ROW = "api_key_id = %s AND month = %s"


def _counter_rows(admission: Admission) -> list[tuple[str, list[Any]]]:
    """The user's counter row, then the key's: the lock order of every writer."""
    month = _db(QuotaCounter, "month", admission.month)
    rows = [(_USER_ROW, [admission.user_id, month])]
    if admission.api_key_id is not None:
        rows.append((_KEY_ROW, [admission.api_key_id, month]))
    return rows


def _counters_ensure(*, user_id: int, api_key_id: int | None, month: date) -> None:
    """Creates this month's counter rows if they are missing; concurrent callers may race."""
    rows = [QuotaCounter(user_id=user_id, api_key_id=None, month=month)]
    if api_key_id is not None:
        rows.append(QuotaCounter(user_id=user_id, api_key_id=api_key_id, month=month))
    QuotaCounter.objects.bulk_create(rows, ignore_conflicts=True)


def _reserve_on(*, row: str, row_params: list[Any], limits: Limits, amount: Decimal, tokens: int) -> bool:
    """The atomic reservation: one UPDATE that only matches while the amount still fits."""
    amount_db = _db(QuotaCounter, "reserved", amount)
    fits, fits_params = "", []
    if limits.monthly_budget is not None:
        fits += " AND used + reserved + CAST(%s AS NUMERIC) <= CAST(%s AS NUMERIC)"
        fits_params += [amount_db, _db(QuotaCounter, "used", limits.monthly_budget)]
    if limits.monthly_tokens is not None:
        fits += " AND tokens_used + tokens_reserved + %s <= %s"
        fits_params += [tokens, limits.monthly_tokens]
    updated = _execute(
        f"UPDATE {_COUNTERS} SET reserved = reserved + CAST(%s AS NUMERIC),"  # noqa: S608 (table names from the models)
        f" tokens_reserved = tokens_reserved + %s WHERE {row}{fits}",
        [amount_db, tokens, *row_params, *fits_params],
    )
    return updated == 1


def _insufficient(*, month: date, whose: str, needed: Decimal, left: Decimal | None) -> InsufficientQuota:
    resets_at = periods.next_month_start(month)
    what_is_left = f"{left:.4f} is left" if left is not None else "not enough is left"
    return InsufficientQuota(
        f"This call needs {needed:.4f} to start and {what_is_left} of {whose} monthly budget, "
        f"which resets at {resets_at:%Y-%m-%d %H:%M} UTC."
    )


def _left(*, row: str, row_params: list[Any], limits: Limits) -> Decimal | None:
    """What is left of a counter row's budget (for the refusal's message), if it has one."""
    if limits.monthly_budget is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT used, reserved FROM {_COUNTERS} WHERE {row}", row_params)  # noqa: S608
        found = cursor.fetchone()
    used, reserved = (Decimal(str(value)) for value in found) if found else (ZERO, ZERO)
    return max(ZERO, limits.monthly_budget - used - reserved)


def _reserve(*, admission: Admission, limits: Limits, key_limits: Limits | None) -> None:
    """Reserves on the user's row, then the key's: the same lock order as every writer."""
    rows = _counter_rows(admission)
    for (row, row_params), row_limits, whose in zip(
        rows, (limits, key_limits or NO_LIMITS), ("your", "this API key's"), strict=False
    ):
        reserved = functools.partial(
            _reserve_on,
            row=row,
            row_params=row_params,
            limits=row_limits,
            amount=admission.amount,
            tokens=admission.tokens,
        )
        if reserved():
            continue
        # The first call of a month finds no counter row: create them, then try once more.
        _counters_ensure(user_id=admission.user_id, api_key_id=admission.api_key_id, month=admission.month)
        if not reserved():
            left = _left(row=row, row_params=row_params, limits=row_limits)
            raise _insufficient(month=admission.month, whose=whose, needed=admission.amount, left=left)


_RESERVATIONS = Reservation._meta.db_table


def _reservation_open(admission: Admission) -> None:
    _execute(
        f"INSERT INTO {_RESERVATIONS} (id, user_id, api_key_id, month, amount, tokens, created_at)"  # noqa: S608 (table names from the models)
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [
            _db(Reservation, "id", admission.id),
            admission.user_id,
            admission.api_key_id,
            _db(Reservation, "month", admission.month),
            _db(Reservation, "amount", admission.amount),
            admission.tokens,
            _db(Reservation, "created_at", admission.created_at),
        ],
    )


def admission_reserve(
    *,
    user: User,
    api_key: ApiKey | None,
    target: ModelTarget,
    input_tokens: int,
    max_output_tokens: int,
    rate_limited: bool = True,
) -> Admission:
    """Admits one AI call, or raises before any upstream call.

    First the rate limit (the user's calls per minute, and the key's if it has its own),
    then a reservation against the month's budget of the user and of the key: the input
    and an output allowance of RESERVE_OUTPUT_TOKENS (or `max_output_tokens`, if smaller),
    or, when the budget cannot cover that, of one RESERVE_STEP_TOKENS step. The turn
    reserves more with admission_extend as the reply grows, so a call is refused only when
    the budget cannot pay for its start. Call it outside a transaction: the counter row
    stays locked until the reservation commits.

    Raises RateLimited (429 `rate_limited`, with Retry-After) or InsufficientQuota (429
    `insufficient_quota`, saying what is left and what the call needed).

    `rate_limited=False` skips the per-minute limit, which counts the calls users make, for
    a call Nexus makes on a user's behalf (a title after a first reply); it is charged alike.
    """
    if input_tokens < 0 or max_output_tokens < 0:
        raise ApiError("Token counts cannot be negative.", code="invalid_tokens")
    limits = user_limits(user_id=user.pk)
    key_limits = api_key_limits(api_key_id=api_key.pk) if api_key is not None else None

    if rate_limited:
        if key_limits is not None and key_limits.calls_per_minute is not None and api_key is not None:
            ai_call_count(subject=Counted("key", api_key.pk), limit=key_limits.calls_per_minute)
        ai_call_count(subject=Counted("user", user.pk), limit=limits.calls_per_minute or 0)

    now = periods.now()
    allowances = sorted(
        {
            min(max_output_tokens, settings.RESERVE_OUTPUT_TOKENS),
            min(max_output_tokens, settings.RESERVE_STEP_TOKENS),
        },
        reverse=True,
    )
    for attempt, output_tokens in enumerate(allowances, start=1):
        admission = Admission(
            id=uuid.uuid4(),
            user_id=user.pk,
            api_key_id=api_key.pk if api_key is not None else None,
            month=periods.month_start(now),
            amount=call_cost(target=target, input_tokens=input_tokens, output_tokens=output_tokens),
            tokens=input_tokens + output_tokens,
            model_id=target.id,
            created_at=now,
            output_tokens=output_tokens,
            max_output_tokens=max_output_tokens,
        )
        try:
            with transaction.atomic():
                _reserve(admission=admission, limits=limits, key_limits=key_limits)
                _reservation_open(admission)
        except InsufficientQuota:
            if attempt == len(allowances):
                raise
            continue
        return admission
    raise AssertionError("unreachable: the last allowance raises")  # pragma: no cover


def admission_extend(*, admission: Admission, target: ModelTarget, output_tokens: int) -> Admission | None:
    """Reserves `output_tokens` more of the reply (never past its max_output_tokens); the
    admission with them, or None when the budget cannot pay for them (the turn ends there).

    The reservation row and the counters grow together, in one transaction, with the same
    conditional UPDATE as the first reservation, so simultaneous calls cannot overspend.
    """
    output_tokens = min(output_tokens, admission.max_output_tokens - admission.output_tokens)
    if output_tokens <= 0:
        return None
    step = replace(
        admission,
        amount=call_cost(target=target, input_tokens=0, output_tokens=output_tokens),
        tokens=output_tokens,
    )
    limits = user_limits(user_id=admission.user_id)
    key_limits = api_key_limits(api_key_id=admission.api_key_id) if admission.api_key_id is not None else None
    try:
        with transaction.atomic():
            _reserve(admission=step, limits=limits, key_limits=key_limits)
            grown = _execute(
                f"UPDATE {_RESERVATIONS} SET amount = amount + CAST(%s AS NUMERIC), tokens = tokens + %s"  # noqa: S608 (table names from the models)
                " WHERE id = %s",
                [
                    _db(Reservation, "amount", step.amount),
                    output_tokens,
                    _db(Reservation, "id", admission.id),
                ],
            )
            if grown != 1:  # settled or released meanwhile: nothing to grow
                raise InsufficientQuota()
    except InsufficientQuota:
        return None
    return replace(
        admission,
        amount=admission.amount + step.amount,
        tokens=admission.tokens + output_tokens,
        output_tokens=admission.output_tokens + output_tokens,
    )


def _counters_move(
    *, admission: Admission, release_amount: Decimal, release_tokens: int, spent: Decimal, spent_tokens: int
) -> None:
    """Releases what was reserved and adds what was spent, on the user's row, then the key's."""
    release, spent_db = _db(QuotaCounter, "reserved", release_amount), _db(QuotaCounter, "used", spent)
    for row, row_params in _counter_rows(admission):
        _execute(
            f"UPDATE {_COUNTERS} SET"  # noqa: S608 (table names from the models)
            " reserved = CASE WHEN reserved > CAST(%s AS NUMERIC)"
            " THEN reserved - CAST(%s AS NUMERIC) ELSE 0 END,"
            " tokens_reserved = CASE WHEN tokens_reserved > %s THEN tokens_reserved - %s ELSE 0 END,"
            " used = used + CAST(%s AS NUMERIC), tokens_used = tokens_used + %s"
            f" WHERE {row}",
            [release, release, release_tokens, release_tokens, spent_db, spent_tokens, *row_params],
        )


def _reservation_close(*, admission: Admission) -> tuple[Decimal, int] | None:
    """What the reservation held (it grows as a reply streams), the one time it is closed;
    None if it was settled or released already."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {_RESERVATIONS} WHERE id = %s RETURNING amount, tokens",  # noqa: S608 (table names from the models)
            [_db(Reservation, "id", admission.id)],
        )
        row = cursor.fetchone()
    return None if row is None else (Decimal(str(row[0])), int(row[1]))


@transaction.atomic
def admission_release(*, admission: Admission) -> None:
    """Gives back a reservation whose call never reached the provider. Safe to call twice."""
    if (held := _reservation_close(admission=admission)) is not None:
        _counters_move(
            admission=admission, release_amount=held[0], release_tokens=held[1], spent=ZERO, spent_tokens=0
        )


_DAILY = DailyUsage._meta.db_table


def _daily_usage_add(*, record: UsageRecord) -> None:
    """Adds one record to its day's rollup row: an increment, or the day's first insert."""
    key = {
        "day": periods.utc_day(record.created_at),
        "user_id": record.user_id,
        "api_key_ref": record.api_key_id or 0,
        "model_name": record.model_name,
    }
    failed, stopped = int(record.outcome == Outcome.FAILED), int(record.outcome == Outcome.STOPPED)
    cost = _db(DailyUsage, "cost", record.cost)

    def increment() -> int:
        return _execute(
            f"UPDATE {_DAILY} SET provider_name = %s, calls = calls + 1, calls_failed = calls_failed + %s,"  # noqa: S608 (table names from the models)
            " calls_stopped = calls_stopped + %s, calls_cached = calls_cached + %s,"
            " input_tokens = input_tokens + %s, output_tokens = output_tokens + %s,"
            " cost = cost + CAST(%s AS NUMERIC),"
            " latency_ms_total = latency_ms_total + %s"
            " WHERE day = %s AND user_id = %s AND api_key_ref = %s AND model_name = %s",
            [
                record.provider_name,
                failed,
                stopped,
                int(record.cached),
                record.input_tokens,
                record.output_tokens,
                cost,
                record.latency_ms,
                _db(DailyUsage, "day", key["day"]),
                key["user_id"],
                key["api_key_ref"],
                key["model_name"],
            ],
        )

    if increment():
        return
    try:
        with transaction.atomic():
            DailyUsage.objects.create(
                **key,
                provider_name=record.provider_name,
                calls=1,
                calls_failed=failed,
                calls_stopped=stopped,
                calls_cached=int(record.cached),
                input_tokens=record.input_tokens,
                output_tokens=record.output_tokens,
                cost=record.cost,
                latency_ms_total=record.latency_ms,
            )
    except IntegrityError:  # another call inserted the day's row first
        increment()


def _references_present(record: UsageRecord) -> tuple[bool, bool]:
    """Whether the record's API key and model still exist (either may be deleted mid-call)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM {ApiKey._meta.db_table} WHERE id = %s),"  # noqa: S608 (table names from the models)
            f" (SELECT COUNT(*) FROM {Model._meta.db_table} WHERE id = %s)",
            [record.api_key_id or 0, record.model_id or 0],
        )
        key, model = cursor.fetchone()
    return bool(key), bool(model)


@transaction.atomic
def usage_record_create(
    *,
    admission: Admission,
    target: ModelTarget,
    input_tokens: int,
    output_tokens: int,
    estimated: bool,
    cached: bool,
    outcome: str,
    latency_ms: int,
    ttft_ms: int | None,
    charged: bool = True,
    kind: str = CallKind.CHAT,
) -> UsageRecord:
    """Writes the ledger row of an admitted call and settles its reservation to the real cost.

    `target` is the model that served (a fallback, maybe); the cost comes from its prices
    now. `charged=False` records a call that costs nothing: replayed from the cache, or
    refused by the provider (or never answered) before its first token, which providers do
    not bill; its tokens are kept for information. Exactly once per admission: a second
    call returns the first record and charges nothing. Run it in the transaction that
    saves the assistant message.
    """
    if outcome not in Outcome.values:
        raise ValueError(f"outcome must be one of {', '.join(Outcome.values)}, not {outcome!r}.")
    if kind not in CallKind.values:
        raise ValueError(f"kind must be one of {', '.join(CallKind.values)}, not {kind!r}.")
    cost = (
        call_cost(target=target, input_tokens=input_tokens, output_tokens=output_tokens) if charged else ZERO
    )
    record = UsageRecord(
        admission_id=admission.id,
        kind=kind,
        user_id=admission.user_id,
        api_key_id=admission.api_key_id,
        model_id=target.id,
        model_name=target.name,
        provider_name=target.provider.name,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        tokens_estimated=estimated,
        input_price_per_million=target.input_price_per_million,
        output_price_per_million=target.output_price_per_million,
        cost=cost,
        cached=cached,
        outcome=outcome,
        latency_ms=max(0, latency_ms),
        ttft_ms=max(0, ttft_ms) if ttft_ms is not None else None,
        created_at=periods.now(),
    )
    # The reservation is closed first: its row lock makes a concurrent second settlement
    # wait for this one, and only a call whose reservation is gone can have a record.
    held = _reservation_close(admission=admission)
    if held is None:
        existing = UsageRecord.objects.filter(admission_id=admission.id).first()
        if existing is not None:
            return existing  # settled already: nothing is charged twice
    # The key or the model may have been deleted while the call ran: keep the record
    # without them (foreign keys are checked at commit, too late to recover from).
    key_present, model_present = _references_present(record)
    if not key_present:
        record.api_key_id = None
    if not model_present:
        record.model_id = None
    record.save(force_insert=True)
    _counters_move(
        admission=admission,
        release_amount=held[0] if held is not None else ZERO,
        release_tokens=held[1] if held is not None else 0,
        spent=cost,
        spent_tokens=input_tokens + output_tokens,
    )
    _daily_usage_add(record=record)
    return record


def reservations_release_stale(*, older_than: timedelta) -> int:
    """Releases reservations whose turn died without settling (a killed process); returns how many.

    Each in a transaction of its own, so no lock is held longer than one release.
    """
    cutoff = periods.now() - older_than
    released = 0
    stale = Reservation.objects.filter(created_at__lt=cutoff).order_by("created_at")
    for reservation in stale.iterator(chunk_size=500):
        admission = Admission(
            id=reservation.id,
            user_id=reservation.user_id,
            api_key_id=reservation.api_key_id,
            month=reservation.month,
            amount=reservation.amount,
            tokens=reservation.tokens,
            model_id=0,
            created_at=reservation.created_at,
        )
        with transaction.atomic():
            if (held := _reservation_close(admission=admission)) is not None:
                _counters_move(
                    admission=admission,
                    release_amount=held[0],
                    release_tokens=held[1],
                    spent=ZERO,
                    spent_tokens=0,
                )
                released += 1
    return released


@transaction.atomic
def user_quota_set(
    *,
    user: User,
    monthly_budget: Decimal | None,
    monthly_tokens: int | None = None,
    calls_per_minute: int | None = None,
) -> UserQuota:
    """Sets a user's overrides; None keeps the default (settings) for that limit."""
    quota, _ = UserQuota.objects.update_or_create(
        user=user,
        defaults={
            "monthly_budget": monthly_budget,
            "monthly_tokens": monthly_tokens,
            "calls_per_minute": calls_per_minute,
        },
    )
    return quota


@transaction.atomic
def api_key_quota_set(
    *,
    api_key: ApiKey,
    monthly_budget: Decimal | None,
    monthly_tokens: int | None = None,
    calls_per_minute: int | None = None,
) -> ApiKeyQuota:
    """Sets an API key's own limits, on top of its user's; None means no limit of its own."""
    quota, _ = ApiKeyQuota.objects.update_or_create(
        api_key=api_key,
        defaults={
            "monthly_budget": monthly_budget,
            "monthly_tokens": monthly_tokens,
            "calls_per_minute": calls_per_minute,
        },
    )
    return quota
