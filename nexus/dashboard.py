"""The figures of the operator's dashboard on the admin home, in a handful of queries.

Usage comes from billing's daily rollup (never the ledger), so the home page stays fast
however many calls there were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from django.db.models import Q

from accounts.models import User
from billing import periods, selectors
from billing.models import DailyUsage

BUSIEST_MODELS = 5


@dataclass(frozen=True, slots=True)
class UsageFigures:
    calls: int
    failed: int
    input_tokens: int
    output_tokens: int
    cost: Decimal

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def error_rate(self) -> float:
        return self.failed / self.calls if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class Dashboard:
    today: date
    users_total: int
    users_active_today: int
    usage_today: UsageFigures
    usage_month: UsageFigures
    busiest_models: list[dict[str, Any]]


def _figures(row: dict[str, Any]) -> UsageFigures:
    return UsageFigures(
        calls=int(row["calls"]),
        failed=int(row["failed"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cost=Decimal(row["cost"]),
    )


def dashboard_get(*, today: date | None = None) -> Dashboard:
    """Users (all, active today: signed in or called a model), usage today and this month
    (UTC), and the models with the most calls this month."""
    today = today or periods.utc_day(periods.now())
    month_start = today.replace(day=1)
    stats = selectors.system_stats(start=month_start, end=today, top=0)
    day_start = datetime.combine(today, time.min, tzinfo=UTC)
    called_today = DailyUsage.objects.filter(day=today).values("user_id")
    active_today = User.objects.filter(Q(last_login__gte=day_start) | Q(pk__in=called_today)).count()
    models = sorted(stats["models"], key=lambda row: (-row["calls"], row["model"]))[:BUSIEST_MODELS]
    return Dashboard(
        today=today,
        users_total=User.objects.count(),
        users_active_today=active_today,
        usage_today=_figures(stats["days"][-1]),
        usage_month=_figures(stats["totals"]),
        busiest_models=[
            {
                "model": row["model"],
                "provider": row["provider"],
                "calls": row["calls"],
                "tokens": row["total_tokens"],
                "cost": row["cost"],
                "error_rate": row["error_rate"],
            }
            for row in models
        ],
    )
