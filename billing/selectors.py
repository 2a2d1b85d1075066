"""Reads of billing: a caller's quota, a caller's usage, and the operators' statistics.

Usage and statistics read the daily rollup (`DailyUsage`), never the ledger, so they stay
fast however many records there are; the rollup is updated in the same transaction as
each record, so the two always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.db.models import Count, Max, QuerySet, Sum
from django.db.models.functions import Coalesce

from accounts.models import ApiKey, User
from billing import periods
from billing.models import ApiKeyQuota, DailyUsage, QuotaCounter, UserQuota
from billing.money import ZERO, default_monthly_budget
from llm.models import Model
from nexus.lib import runtime
from nexus.lib.process_cache import ProcessCache

GroupBy = Literal["day", "model", "key"]
GROUP_BY_CHOICES: tuple[GroupBy, ...] = ("day", "model", "key")
MAX_STATS_DAYS = 366


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits in force for a user, or an API key: None means none."""

    monthly_budget: Decimal | None
    monthly_tokens: int | None
    calls_per_minute: int | None


NO_LIMITS = Limits(monthly_budget=None, monthly_tokens=None, calls_per_minute=None)


# The quota rows of users and keys as Limits (None: no row), kept in each process;
# billing.apps drops them when a row changes. The defaults they fall back on are runtime
# settings, resolved at every read.
quota_rows: ProcessCache[tuple[str, int], Limits | None] = ProcessCache("billing-quota-rows")


def _row_limits(quota: UserQuota | ApiKeyQuota | None) -> Limits | None:
    if quota is None:
        return None
    return Limits(
        monthly_budget=quota.monthly_budget,
        monthly_tokens=quota.monthly_tokens,
        calls_per_minute=quota.calls_per_minute,
    )


def user_limits(*, user_id: int) -> Limits:
    row = quota_rows.get(
        ("user", user_id), lambda: _row_limits(UserQuota.objects.filter(user_id=user_id).first())
    )
    budget = row.monthly_budget if row and row.monthly_budget is not None else default_monthly_budget()
    calls = row.calls_per_minute if row and row.calls_per_minute is not None else None
    return Limits(
        monthly_budget=budget,
        monthly_tokens=row.monthly_tokens if row else None,
        calls_per_minute=calls if calls is not None else runtime.ai_calls_per_minute(),
    )


def api_key_limits(*, api_key_id: int) -> Limits:
    row = quota_rows.get(
        ("key", api_key_id), lambda: _row_limits(ApiKeyQuota.objects.filter(api_key_id=api_key_id).first())
    )
    return row or NO_LIMITS


@dataclass(frozen=True, slots=True)
class _Counter:
    used: Decimal = ZERO
    reserved: Decimal = ZERO
    tokens_used: int = 0
    tokens_reserved: int = 0


def _counter(*, user_id: int, api_key_id: int | None, month: date) -> _Counter:
    rows = QuotaCounter.objects.filter(month=month)
    if api_key_id is None:
        rows = rows.filter(user_id=user_id, api_key__isnull=True)
    else:
        rows = rows.filter(api_key_id=api_key_id)
    row = rows.values("used", "reserved", "tokens_used", "tokens_reserved").first()
    return _Counter(**row) if row else _Counter()


def _left(limit: Decimal | int | None, counter_used: Decimal | int, counter_reserved: Decimal | int) -> Any:
    if limit is None:
        return None
    left = limit - counter_used - counter_reserved
    return left if left > 0 else (ZERO if isinstance(left, Decimal) else 0)


def _min_known(*values: Any) -> Any:
    known = [value for value in values if value is not None]
    return min(known) if known else None


def quota_get(*, user: User, api_key: ApiKey | None = None) -> dict[str, Any]:
    """This month's budget of the caller: `{limit, used, reserved, remaining, resets_at, ...}`.

    Called with an API key that has a budget of its own, the figures are the key's, and
    `remaining` is also capped by what is left of the user's budget: it is what the caller
    can still spend. `tokens` is the same for the monthly token limit (None fields: none).
    """
    month = periods.month_start(periods.now())
    limits = user_limits(user_id=user.pk)
    mine = _counter(user_id=user.pk, api_key_id=None, month=month)
    remaining = _left(limits.monthly_budget, mine.used, mine.reserved)
    figures = {"scope": "user", "limit": limits.monthly_budget, "used": mine.used, "reserved": mine.reserved}
    tokens = {
        "limit": limits.monthly_tokens,
        "used": mine.tokens_used,
        "reserved": mine.tokens_reserved,
        "remaining": _left(limits.monthly_tokens, mine.tokens_used, mine.tokens_reserved),
    }
    if api_key is not None:
        key_limits = api_key_limits(api_key_id=api_key.pk)
        if key_limits.monthly_budget is not None or key_limits.monthly_tokens is not None:
            theirs = _counter(user_id=user.pk, api_key_id=api_key.pk, month=month)
            if key_limits.monthly_budget is not None:
                figures = {
                    "scope": "key",
                    "limit": key_limits.monthly_budget,
                    "used": theirs.used,
                    "reserved": theirs.reserved,
                }
                remaining = _min_known(
                    remaining, _left(key_limits.monthly_budget, theirs.used, theirs.reserved)
                )
            if key_limits.monthly_tokens is not None:
                tokens = {
                    "limit": key_limits.monthly_tokens,
                    "used": theirs.tokens_used,
                    "reserved": theirs.tokens_reserved,
                    "remaining": _min_known(
                        tokens["remaining"],
                        _left(key_limits.monthly_tokens, theirs.tokens_used, theirs.tokens_reserved),
                    ),
                }
    return {
        **figures,
        "remaining": remaining,
        "period_start": month,
        "resets_at": periods.next_month_start(month),
        "tokens": tokens,
    }


# --- usage and statistics ---------------------------------------------------------------

_TOTALS = {
    "calls": Coalesce(Sum("calls"), 0),
    "failed": Coalesce(Sum("calls_failed"), 0),
    "input_tokens": Coalesce(Sum("input_tokens"), 0),
    "output_tokens": Coalesce(Sum("output_tokens"), 0),
    "cost": Coalesce(Sum("cost"), ZERO),
}


def _with_derived(row: dict[str, Any]) -> dict[str, Any]:
    row["total_tokens"] = row["input_tokens"] + row["output_tokens"]
    row["error_rate"] = round(row["failed"] / row["calls"], 4) if row["calls"] else 0.0
    return row


def _sum_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"calls": 0, "failed": 0, "input_tokens": 0, "output_tokens": 0, "cost": ZERO}
    for row in rows:
        for name in total:
            total[name] += row[name]
    return _with_derived(total)


def default_range(*, today: date | None = None) -> tuple[date, date]:
    """From the first of this month to today (UTC)."""
    today = today or periods.utc_day(periods.now())
    return today.replace(day=1), today


def usage_summary(
    *, user: User, api_key: ApiKey | None = None, start: date, end: date, group_by: GroupBy
) -> dict[str, Any]:
    """The caller's calls, tokens and cost from `start` to `end` (days, UTC, inclusive) per group.

    With an API key, only that key's calls count.
    """
    rows: QuerySet[DailyUsage] = DailyUsage.objects.filter(user=user, day__gte=start, day__lte=end)
    if api_key is not None:
        rows = rows.filter(api_key_ref=api_key.pk)
    if group_by == "day":
        groups = list(rows.values("day").annotate(**_TOTALS).order_by("day"))
    elif group_by == "model":
        groups = list(
            rows.values("model_name")
            .annotate(provider_name=Max("provider_name"), **_TOTALS)
            .order_by("-cost", "model_name")
        )
        # The rollup keeps models by name; the catalog tells their kind, while it has them.
        names = [group["model_name"] for group in groups]
        kinds = dict(Model.objects.filter(name__in=names).values_list("name", "kind"))
        for group in groups:
            group["model"] = group.pop("model_name")
            group["provider"] = group.pop("provider_name")
            group["kind"] = kinds.get(group["model"])
    else:
        groups = list(rows.values("api_key_ref").annotate(**_TOTALS).order_by("-cost", "api_key_ref"))
        ids = [group["api_key_ref"] for group in groups if group["api_key_ref"]]
        keys = {
            key_id: {"id": key_id, "name": name, "prefix": prefix}
            for key_id, name, prefix in ApiKey.objects.filter(user=user, id__in=ids).values_list(
                "id", "name", "prefix"
            )
        }
        for group in groups:
            ref = group.pop("api_key_ref")
            # A deleted key keeps its number; its name and prefix are gone.
            group["key"] = keys.get(ref, {"id": ref, "name": None, "prefix": None}) if ref else None
    for group in groups:
        _with_derived(group)
    return {"from": start, "to": end, "group_by": group_by, "results": groups, "total": _sum_rows(groups)}


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def system_stats(*, start: date, end: date, top: int = 10) -> dict[str, Any]:
    """Everyone's usage from `start` to `end` (days, UTC, inclusive): totals, per day, per
    model and the top users by cost. Days without calls are in the series, with zeros."""
    rows: QuerySet[DailyUsage] = DailyUsage.objects.filter(day__gte=start, day__lte=end)
    totals = rows.aggregate(**_TOTALS, active_users=Count("user", distinct=True))
    by_day = {
        row["day"]: row
        for row in rows.values("day")
        .annotate(**_TOTALS, active_users=Count("user", distinct=True))
        .order_by("day")
    }
    empty = {"calls": 0, "failed": 0, "input_tokens": 0, "output_tokens": 0, "cost": ZERO, "active_users": 0}
    days = [_with_derived(by_day.get(day) or {"day": day, **empty}) for day in _days(start, end)]
    models = list(
        rows.values("model_name")
        .annotate(provider_name=Max("provider_name"), **_TOTALS)
        .order_by("-cost", "model_name")
    )
    for row in models:
        row["model"] = row.pop("model_name")
        row["provider"] = row.pop("provider_name")
        _with_derived(row)
    top_users = list(
        rows.values("user_id", "user__email").annotate(**_TOTALS).order_by("-cost", "-calls", "user_id")[:top]
    )
    for row in top_users:
        row["email"] = row.pop("user__email")
        _with_derived(row)
    return {
        "from": start,
        "to": end,
        "totals": _with_derived(totals),
        "days": days,
        "models": models,
        "top_users": top_users,
    }
