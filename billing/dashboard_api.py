"""OpenAI's legacy balance endpoints, in the shape NextChat and One API's clients read.

    GET /dashboard/billing/subscription                                   (and /v1/dashboard/...)
    GET /dashboard/billing/usage?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD  (and /v1/dashboard/...)

NextChat's balance check (ENABLE_BALANCE_QUERY=1) calls both and shows "Used this month
$<total_usage / 100>, subscription $<hard_limit_usd>". The units are OpenAI's, not Nexus's:
the subscription in dollars (`*_usd`, though it is the price list's currency, whatever that
is), usage in cents (100 x the cost, exact from the Decimal ledger, then a JSON number).

Whose figures: called with an API key, the key's, as /billing/quota and /billing/usage answer.
A key shared by many people (NextChat's server-side OPENAI_API_KEY) then shows what all of them
spent through it, and the budget they share: the key's own when it is tighter than its owner's,
else the owner's. Called with a JWT, the user's: every call, with a key or not.

OpenAI's rules for the dates are kept: `end_date` is not included (NextChat asks from the first
of the month to tomorrow), at most 100 days at a time; days are UTC, as the rollup's. Without
either date the range is this month up to today: NextChat's server (BASE_URL) forwards the
browser's call without its query string (app/api/common.ts requestOpenai sends the path only).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey, User
from billing import periods, selectors
from billing.models import DailyUsage
from billing.money import ZERO
from nexus.lib.auth import ai_authentication_classes

MAX_USAGE_DAYS = 100
# What a budget without a limit is shown as, as One API does: a number NextChat prints
# ("subscription $100000000"), where null would print "$[?]" and 0 would read as no budget.
UNLIMITED_USD = 100_000_000.0
_DATE_FORMAT = "%Y-%m-%d"


def _api_key(request: Request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


def _cents(amount: Decimal) -> float:
    # Multiplied as a Decimal, so only the final conversion to a JSON number rounds.
    return float(amount * 100)


def _dollars(amount: Decimal | None) -> float:
    return UNLIMITED_USD if amount is None else float(amount)


def _day_timestamp(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def subscription_get(*, user: User, api_key: ApiKey | None) -> dict[str, Any]:
    """The caller's monthly budget as OpenAI's billing_subscription object."""
    user_budget = selectors.user_limits(user_id=user.pk).monthly_budget
    budget, scope = user_budget, "user"
    if api_key is not None:
        key_budget = selectors.api_key_limits(api_key_id=api_key.pk).monthly_budget
        if key_budget is not None and (budget is None or key_budget < budget):
            budget, scope = key_budget, "key"
    expires_at = api_key.expires_at if api_key is not None else None
    return {
        "object": "billing_subscription",
        "has_payment_method": True,
        # Nexus has no soft limit (a threshold that only warns): the budget is both.
        "soft_limit_usd": _dollars(budget),
        "hard_limit_usd": _dollars(budget),
        # What no key of the user can go past: the user's own budget.
        "system_hard_limit_usd": _dollars(user_budget),
        # A key's expiry; 0 (as One API answers) when nothing expires.
        "access_until": int(expires_at.timestamp()) if expires_at is not None else 0,
        "plan": {"title": "Monthly budget", "id": scope},
    }


def usage_get(*, user: User, api_key: ApiKey | None, start: date, end: date) -> dict[str, Any]:
    """The caller's cost per day and model from `start` up to (not including) `end`, in cents."""
    rows = DailyUsage.objects.filter(user=user, day__gte=start, day__lt=end)
    if api_key is not None:
        rows = rows.filter(api_key_ref=api_key.pk)
    by_day: dict[date, list[dict[str, Any]]] = {}
    total = ZERO
    for row in rows.values("day", "model_name").annotate(cost=Sum("cost")).order_by("day", "model_name"):
        by_day.setdefault(row["day"], []).append({"name": row["model_name"], "cost": _cents(row["cost"])})
        total += row["cost"]
    days = [start + timedelta(days=offset) for offset in range((end - start).days)]
    return {
        "object": "list",
        # Every day of the range, as OpenAI listed them: a chart needs its empty days too.
        "daily_costs": [
            {"timestamp": _day_timestamp(day), "line_items": by_day.get(day, [])} for day in days
        ],
        "total_usage": _cents(total),
    }


class DashboardUsageQuery(serializers.Serializer):
    start_date = serializers.DateField(
        input_formats=[_DATE_FORMAT],
        required=False,
        help_text="First day (UTC, included), YYYY-MM-DD; with end_date, or neither: this month.",
    )
    end_date = serializers.DateField(
        input_formats=[_DATE_FORMAT],
        required=False,
        help_text="The day after the last (UTC, not included), YYYY-MM-DD.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            today = periods.utc_day(periods.now())
            return {"start_date": today.replace(day=1), "end_date": today + timedelta(days=1)}
        for name, other in (("start_date", "end_date"), ("end_date", "start_date")):
            if name not in attrs:
                raise serializers.ValidationError({name: [f"Send {name} with {other}, or neither."]})
        start, end = attrs["start_date"], attrs["end_date"]
        if end <= start:
            raise serializers.ValidationError(
                {"end_date": ["end_date must be after start_date: it is the first day not included."]}
            )
        if (end - start).days > MAX_USAGE_DAYS:
            raise serializers.ValidationError(
                {"end_date": [f"Usage can be queried for at most {MAX_USAGE_DAYS} days at a time."]}
            )
        return attrs


class DashboardPlanOutput(serializers.Serializer):
    title = serializers.CharField()
    id = serializers.CharField(
        help_text="`key` when the API key's own budget is the tighter one, else `user`."
    )


class DashboardSubscriptionOutput(serializers.Serializer):
    object = serializers.CharField()
    has_payment_method = serializers.BooleanField()
    soft_limit_usd = serializers.FloatField()
    hard_limit_usd = serializers.FloatField(help_text="The caller's monthly budget.")
    system_hard_limit_usd = serializers.FloatField(help_text="The user's monthly budget.")
    access_until = serializers.IntegerField(help_text="When the API key expires (Unix time); 0: never.")
    plan = DashboardPlanOutput()


class DashboardLineItemOutput(serializers.Serializer):
    name = serializers.CharField(help_text="The model.")
    cost = serializers.FloatField(help_text="In cents.")


class DashboardDailyCostOutput(serializers.Serializer):
    timestamp = serializers.FloatField(help_text="The day's start, 00:00 UTC (Unix time).")
    line_items = DashboardLineItemOutput(many=True)


class DashboardUsageOutput(serializers.Serializer):
    object = serializers.CharField()
    daily_costs = DashboardDailyCostOutput(many=True)
    total_usage = serializers.FloatField(help_text="In cents.")


class SubscriptionView(APIView):
    authentication_classes = ai_authentication_classes()
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The caller's monthly budget, in OpenAI's legacy shape (NextChat's balance)",
        responses=DashboardSubscriptionOutput,
    )
    def get(self, request: Request) -> Response:
        subscription = subscription_get(user=request.user, api_key=_api_key(request))  # type: ignore[arg-type]
        return Response(DashboardSubscriptionOutput(subscription).data)


class UsageView(APIView):
    authentication_classes = ai_authentication_classes()
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The caller's cost per day and model in cents, in OpenAI's legacy shape (NextChat's balance)",
        parameters=[DashboardUsageQuery],
        responses=DashboardUsageOutput,
    )
    def get(self, request: Request) -> Response:
        query = DashboardUsageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        usage = usage_get(
            user=request.user,  # type: ignore[arg-type]
            api_key=_api_key(request),
            start=query.validated_data["start_date"],
            end=query.validated_data["end_date"],
        )
        return Response(DashboardUsageOutput(usage).data)
