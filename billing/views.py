"""HTTP views of billing: the caller's quota and usage, and the operators' statistics.

`/billing/quota` and `/billing/usage` take a JWT or an API key; called with a key, they
describe that key (its budget, its calls). `/system/stats` needs the permission to view
usage records, the same one the admin's usage pages check.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from billing import selectors
from billing.permissions import CanViewAllUsage
from billing.serializers import QuotaOutput, StatsOutput, StatsQuery, UsageOutput, UsageQuery
from nexus.lib.auth import ai_authentication_classes


def _api_key(request: Request) -> ApiKey | None:
    """The API key the request was authenticated with, if it was."""
    return request.auth if isinstance(request.auth, ApiKey) else None


class QuotaView(APIView):
    authentication_classes = ai_authentication_classes()
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="billing_quota",
        summary="This month's budget: limit, used, reserved, remaining, when it resets",
        responses=QuotaOutput,
    )
    def get(self, request: Request) -> Response:
        quota = selectors.quota_get(user=request.user, api_key=_api_key(request))  # type: ignore[arg-type]
        return Response(QuotaOutput(quota).data)


class UsageView(APIView):
    authentication_classes = ai_authentication_classes()
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="billing_usage",
        summary="The caller's calls, tokens and cost per day, model or API key",
        parameters=[UsageQuery],
        responses=UsageOutput,
    )
    def get(self, request: Request) -> Response:
        query = UsageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        usage = selectors.usage_summary(
            user=request.user,  # type: ignore[arg-type]
            api_key=_api_key(request),
            start=query.validated_data["from"],
            end=query.validated_data["to"],
            group_by=query.validated_data["group_by"],
        )
        return Response(UsageOutput(usage).data)


class SystemStatsView(APIView):
    permission_classes = [CanViewAllUsage]

    @extend_schema(
        operation_id="system_stats",
        summary="Everyone's usage: totals, per day, per model, top users (admins)",
        parameters=[StatsQuery],
        responses=StatsOutput,
    )
    def get(self, request: Request) -> Response:
        query = StatsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        stats = selectors.system_stats(start=query.validated_data["from"], end=query.validated_data["to"])
        return Response(StatsOutput(stats).data)
