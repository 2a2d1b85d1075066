"""Shapes of billing's API: the query parameters it reads and the JSON it answers with."""

from __future__ import annotations

from datetime import date
from typing import Any

from rest_framework import serializers

from billing import selectors
from billing.models import COST_MAX_DIGITS
from billing.money import COST_PLACES


def _money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=COST_MAX_DIGITS, decimal_places=COST_PLACES, coerce_to_string=True, **kwargs
    )


class DateRangeQuery(serializers.Serializer):
    """`from` and `to`, days in UTC, both included; by default this month up to today."""

    to = serializers.DateField(required=False, help_text="Last day (UTC, included); default today.")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # `from` is a Python keyword, so it cannot be declared as a class attribute.
        fields["from"] = serializers.DateField(
            required=False, help_text="First day (UTC, included); default the first of this month."
        )
        return fields

    max_days: int | None = None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        default_start, default_end = selectors.default_range()
        end: date = attrs.get("to") or default_end
        start: date = attrs.get("from") or (default_start if end >= default_start else end.replace(day=1))
        if start > end:
            raise serializers.ValidationError({"from": ["`from` must not be after `to`."]})
        if self.max_days is not None and (end - start).days + 1 > self.max_days:
            raise serializers.ValidationError({"from": [f"The range may span at most {self.max_days} days."]})
        return {**attrs, "from": start, "to": end}


class UsageQuery(DateRangeQuery):
    group_by = serializers.ChoiceField(choices=selectors.GROUP_BY_CHOICES, default="day", required=False)


class StatsQuery(DateRangeQuery):
    max_days = selectors.MAX_STATS_DAYS


class TokenQuota(serializers.Serializer):
    limit = serializers.IntegerField(allow_null=True)
    used = serializers.IntegerField()
    reserved = serializers.IntegerField()
    remaining = serializers.IntegerField(allow_null=True)


class QuotaOutput(serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=("user", "key"), help_text="`key` when the API key called with has a budget of its own."
    )
    limit = _money()
    used = _money()
    reserved = _money(help_text="Held by calls in progress.")
    remaining = _money()
    period_start = serializers.DateField()
    resets_at = serializers.DateTimeField()
    tokens = TokenQuota()


class UsageTotals(serializers.Serializer):
    calls = serializers.IntegerField()
    failed = serializers.IntegerField()
    error_rate = serializers.FloatField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = _money()


class UsageKey(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(allow_null=True, help_text="Null when the key was deleted.")
    prefix = serializers.CharField(allow_null=True)


class UsageGroup(UsageTotals):
    day = serializers.DateField(required=False, help_text="With group_by=day.")
    model = serializers.CharField(required=False, help_text="With group_by=model.")
    provider = serializers.CharField(required=False, help_text="With group_by=model.")
    kind = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="With group_by=model: chat or embedding; null when the model was deleted.",
    )
    key = UsageKey(required=False, allow_null=True, help_text="With group_by=key; null: calls without a key.")

    def to_representation(self, instance: Any) -> Any:
        # A row holds only its own group's field (day, model or key): leave the others out.
        data = super().to_representation(instance)
        return {name: value for name, value in data.items() if name in instance or name not in _GROUP_FIELDS}


_GROUP_FIELDS = frozenset({"day", "model", "provider", "kind", "key"})


def _range_fields() -> dict[str, serializers.Field]:
    return {"from": serializers.DateField(), "to": serializers.DateField()}


class UsageOutput(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=selectors.GROUP_BY_CHOICES)
    results = UsageGroup(many=True)
    total = UsageTotals()

    def get_fields(self) -> dict[str, serializers.Field]:
        return {**_range_fields(), **super().get_fields()}


class DayStats(UsageTotals):
    day = serializers.DateField()
    active_users = serializers.IntegerField()


class ModelStats(UsageTotals):
    model = serializers.CharField()
    provider = serializers.CharField()


class UserStats(UsageTotals):
    user_id = serializers.IntegerField()
    email = serializers.EmailField()


class StatsTotals(UsageTotals):
    active_users = serializers.IntegerField()


class StatsOutput(serializers.Serializer):
    totals = StatsTotals()
    days = DayStats(many=True)
    models = ModelStats(many=True)
    top_users = UserStats(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        return {**_range_fields(), **super().get_fields()}
