"""What the operator's management commands do, apart from parsing and printing.

- `conversations_purge`: delete conversations nobody touched since a cutoff, in batches.
- `providers_check`: one tiny call per enabled provider, all at once: latency or error.
- `usage_report`: a month's calls, tokens and cost per user and model, from the rollup.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Sum

from accounts.services import audit_event_record
from billing.models import DailyUsage
from billing.money import ZERO
from chats.models import Conversation, Message, MessageStatus
from llm import selectors as llm_selectors
from llm import services as llm_services
from llm.admin import _test_target as connection_test_target  # the admin's "test connection", reused
from llm.models import Provider
from llm.types import LLMError

# --- durations and months -------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*([hdw])\s*$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def duration_parse(text: str) -> timedelta:
    """`365d`, `12w` or `48h` as a timedelta; ValueError naming the accepted forms."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration such as 365d, 12w or 48h.")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def month_parse(text: str) -> date:
    """`2026-03` as the first day of that month; ValueError otherwise."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"{text!r} is not a month such as 2026-03 (YYYY-MM).")
    return date(int(match.group(1)), int(match.group(2)), 1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


# --- purge ----------------------------------------------------------------------------------


def conversations_to_purge(*, before: datetime) -> Any:
    """Conversations last changed before `before`, except any whose reply is still streaming."""
    streaming = Message.objects.filter(conversation=OuterRef("pk"), status=MessageStatus.STREAMING)
    return Conversation.objects.filter(updated_at__lt=before).exclude(Exists(streaming))


def conversations_purge(
    *,
    before: datetime,
    dry_run: bool = False,
    batch_size: int = 500,
    progress: Callable[[int, int], None] | None = None,
    reason: str = "",
) -> int:
    """Deletes those conversations with their messages, `batch_size` at a time, and records
    one audit event; returns how many there were (and, with `dry_run`, deletes nothing).

    `progress(done, total)` is called after each batch.
    """
    total = conversations_to_purge(before=before).count()
    if dry_run or total == 0:
        return total
    done = 0
    while True:
        with transaction.atomic():
            ids = list(
                conversations_to_purge(before=before).order_by("pk").values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            Conversation.objects.filter(pk__in=ids).delete()
        done += len(ids)
        if progress is not None:
            progress(done, max(total, done))
    audit_event_record(
        action="conversations.purged",
        target="conversations",
        metadata={"count": done, "before": before.isoformat(), "reason": reason},
    )
    return done


# --- provider checks --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderCheck:
    provider: str
    model: str
    seconds: float | None = None
    error_code: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.seconds is not None


async def _check(provider: str, model: str, target: Any) -> ProviderCheck:
    try:
        seconds = await llm_services.provider_test_connection(target=target)
    except LLMError as error:
        return ProviderCheck(provider=provider, model=model, error_code=error.code, error=error.message)
    return ProviderCheck(provider=provider, model=model, seconds=seconds)


def providers_check() -> list[ProviderCheck]:
    """Asks each enabled provider's first enabled model for one token, all at once.

    Never from the response cache, with no retries and short timeouts (as the admin's
    "test connection" action). A provider without an enabled model is reported as such.
    """
    results: list[ProviderCheck] = []
    calls: list[tuple[str, str, Any]] = []
    for provider in Provider.objects.filter(enabled=True).order_by("name"):
        model = provider.models.filter(enabled=True).order_by("name").first()
        if model is None:
            results.append(
                ProviderCheck(
                    provider=provider.name, model="", error_code="no_model", error="No enabled model."
                )
            )
            continue
        calls.append((provider.name, model.name, connection_test_target(llm_selectors.model_target(model))))

    async def check_all() -> list[ProviderCheck]:
        return list(await asyncio.gather(*(_check(*call) for call in calls)))

    if calls:
        results.extend(asyncio.run(check_all()))
    return sorted(results, key=lambda check: check.provider)


# --- usage report ------------------------------------------------------------------------------

REPORT_COLUMNS = (
    "user",
    "model",
    "provider",
    "calls",
    "failed",
    "stopped",
    "cached",
    "input_tokens",
    "output_tokens",
    "cost",
)


def usage_report(*, month: date) -> dict[str, Any]:
    """Everyone's calls, tokens and cost in `month` (UTC) per user and model, and the totals."""
    rows = list(
        DailyUsage.objects.filter(day__gte=month, day__lt=next_month(month))
        .values("user__email", "model_name")
        .annotate(
            provider=Max("provider_name"),
            calls_total=Sum("calls"),
            failed_total=Sum("calls_failed"),
            stopped_total=Sum("calls_stopped"),
            cached_total=Sum("calls_cached"),
            input_total=Sum("input_tokens"),
            output_total=Sum("output_tokens"),
            cost_total=Sum("cost"),
        )
        .order_by("user__email", "model_name")
    )
    lines = [
        {
            "user": row["user__email"],
            "model": row["model_name"],
            "provider": row["provider"],
            "calls": row["calls_total"],
            "failed": row["failed_total"],
            "stopped": row["stopped_total"],
            "cached": row["cached_total"],
            "input_tokens": row["input_total"],
            "output_tokens": row["output_total"],
            "cost": row["cost_total"] or ZERO,
        }
        for row in rows
    ]
    totals: dict[str, Any] = {
        name: sum((line[name] for line in lines), Decimal(0) if name == "cost" else 0)
        for name in REPORT_COLUMNS[3:]
    }
    return {"month": month, "rows": lines, "totals": totals}
