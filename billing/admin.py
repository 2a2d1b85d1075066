"""The operator's console for billing: the ledger, budgets, and the usage dashboard.

- Usage records are read-only, filterable, with the totals of the selection and CSV export.
- A user's quota is edited inline on the user's page (accounts' UserAdmin, extended here:
  accounts may not import billing).
- The usage dashboard (listed under Billing) draws its charts as server-side SVG.

Reading usage needs `billing.view_usagerecord`, the permission /system/stats checks too.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse

from accounts import admin as accounts_admin
from accounts.models import User
from billing import charts, periods, selectors
from billing.models import (
    ApiKeyQuota,
    DailyUsage,
    QuotaCounter,
    Reservation,
    UsageDashboard,
    UsageRecord,
    UserQuota,
)
from billing.money import ZERO, plain_amount
from billing.permissions import VIEW_USAGE
from nexus.lib.admin import ReadOnlyAdmin

# --- usage records ------------------------------------------------------------------------

CSV_COLUMNS = (
    "created_at",
    "user",
    "api_key",
    "model_name",
    "kind",
    "provider_name",
    "input_tokens",
    "output_tokens",
    "tokens_estimated",
    "cost",
    "cached",
    "outcome",
    "latency_ms",
    "ttft_ms",
)


class _Echo:
    """A file-like object for csv.writer that hands each line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value: object) -> object:
    if isinstance(value, Decimal):
        return plain_amount(value)  # 0, not 0E-10
    # A spreadsheet runs a cell that starts with one of these as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_rows(queryset: QuerySet[UsageRecord]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    rows = queryset.select_related(None).values_list(
        "created_at",
        "user__email",
        "api_key__prefix",
        *CSV_COLUMNS[3:],
    )
    for row in rows.iterator(chunk_size=2000):
        yield writer.writerow([_csv_cell(value) for value in row])


def _amount(field: str) -> Callable[[Any], str]:
    """A list column of an amount without its ten decimal places: 0.0048, not 0.0048000000."""

    def column(row: Any) -> str:
        return plain_amount(getattr(row, field))

    column.__name__ = field  # the column's CSS class, field-<name>, as for the field itself
    return admin.display(description=field.replace("_", " "), ordering=field)(column)


class _RollupValueFilter(admin.SimpleListFilter):
    """Offers the values seen in the daily rollup: far fewer rows to scan than the ledger."""

    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        values = DailyUsage.objects.order_by(self.field).values_list(self.field, flat=True).distinct()
        return [(value, value) for value in values]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class ModelNameFilter(_RollupValueFilter):
    title = "model"
    parameter_name = field = "model_name"


class ProviderNameFilter(_RollupValueFilter):
    title = "provider"
    parameter_name = field = "provider_name"


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin[UsageRecord]):
    # What fits a laptop's screen beside the filters; a record's page has the rest (key,
    # provider, cached, time to first token).
    list_display = (
        "created_at",
        "user",
        "model_name",
        "kind",
        "input_tokens",
        "output_tokens",
        _amount("cost"),
        "outcome",
        "latency_ms",
    )
    list_filter = (
        "kind",
        "outcome",
        "cached",
        "tokens_estimated",
        ProviderNameFilter,
        ModelNameFilter,
        "created_at",
    )
    date_hierarchy = "created_at"
    search_fields = ("user__email", "model_name", "api_key__prefix")
    list_select_related = ("user", "api_key")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ("export_csv",)
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    @admin.action(description="Export selected usage records as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[UsageRecord]) -> StreamingHttpResponse:
        stamp = periods.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(
            _csv_rows(queryset.order_by("created_at", "id")), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="usage-{stamp}.csv"'
        return response

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            # The totals of everything the filters, search and date drill-down select.
            context["usage_totals"] = context["cl"].queryset.aggregate(
                calls=Count("id"),
                input_tokens=Coalesce(Sum("input_tokens"), 0),
                output_tokens=Coalesce(Sum("output_tokens"), 0),
                cost=Coalesce(Sum("cost"), ZERO),
            )
            context["usage_totals"]["cost"] = plain_amount(context["usage_totals"]["cost"])
        return response


# --- budgets ------------------------------------------------------------------------------


class UserQuotaInline(admin.StackedInline[UserQuota, User]):
    model = UserQuota
    can_delete = True
    max_num = 1
    extra = 1
    verbose_name = "quota"
    verbose_name_plural = "quota (empty: the defaults)"
    template = "admin/billing/userquota/stacked.html"  # says when the quota is not saved yet
    fields = ("monthly_budget", "monthly_tokens", "calls_per_minute", "this_month")
    readonly_fields = ("this_month",)

    @admin.display(description="This month")
    def this_month(self, quota: UserQuota) -> str:
        if quota.pk is None:
            return "-"
        figures = selectors.quota_get(user=quota.user)
        return (
            f"{figures['used']:.4f} used, {figures['reserved']:.4f} reserved of {figures['limit']:.4f}; "
            f"resets {figures['resets_at']:%Y-%m-%d}"
        )


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(accounts_admin.UserAdmin):
    """accounts' user admin, with the user's quota inline."""

    inlines = (*accounts_admin.UserAdmin.inlines, UserQuotaInline)


@admin.register(ApiKeyQuota)
class ApiKeyQuotaAdmin(admin.ModelAdmin[ApiKeyQuota]):
    list_display = ("api_key", "owner", "monthly_budget", "monthly_tokens", "calls_per_minute")
    list_select_related = ("api_key__user",)
    raw_id_fields = ("api_key",)
    search_fields = ("api_key__prefix", "api_key__name", "api_key__user__email")

    @admin.display(description="owner", ordering="api_key__user__email")
    def owner(self, quota: ApiKeyQuota) -> str:
        return quota.api_key.user.email


@admin.register(QuotaCounter)
class QuotaCounterAdmin(admin.ModelAdmin[QuotaCounter]):
    """What each user (and key) has spent and holds, month by month: read-only."""

    list_display = (
        "month",
        "user",
        "api_key",
        _amount("used"),
        _amount("reserved"),
        "tokens_used",
        "tokens_reserved",
    )
    list_filter = ("month",)
    list_select_related = ("user", "api_key")
    search_fields = ("user__email", "api_key__prefix")
    ordering = ("-month", "-used")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: QuotaCounter | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: QuotaCounter | None = None) -> bool:
        return False


@admin.register(UserQuota)
class UserQuotaAdmin(admin.ModelAdmin[UserQuota]):
    """The users with limits of their own (edited on each user's page too)."""

    list_display = ("user", "monthly_budget", "monthly_tokens", "calls_per_minute")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    search_fields = ("user__email",)


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    """Budget held by calls still running; one older than an hour belongs to a dead process
    (`manage.py release_stale_reservations`)."""

    list_display = ("created_at", "user", "api_key", "month", _amount("amount"), "tokens")
    list_filter = ("month", "created_at")
    list_select_related = ("user", "api_key")
    search_fields = ("user__email", "api_key__prefix")
    ordering = ("created_at",)


@admin.register(DailyUsage)
class DailyUsageAdmin(ReadOnlyAdmin):
    """The daily rollup every statistic reads: per day, user, API key and model."""

    list_display = (
        "day",
        "user",
        "model_name",
        "api_key_ref",
        "calls",
        "calls_failed",
        "input_tokens",
        "output_tokens",
        _amount("cost"),
    )
    list_filter = ("day", ProviderNameFilter, ModelNameFilter)
    list_select_related = ("user",)
    search_fields = ("user__email", "model_name")
    date_hierarchy = "day"
    ordering = ("-day", "-cost")


# --- the dashboard ------------------------------------------------------------------------

RANGE_CHOICES = (7, 30, 90, 365)
# Said in place of a cost chart when the range had calls and none of them cost anything.
NO_COST = (
    "These calls cost nothing: free models (such as demo), replies from the cache, "
    "or calls that failed before their first token."
)
NO_COST_TO_RANK = "Nothing to rank: these calls cost nothing."


def _money_text(amount: Decimal) -> str:
    return charts.format_money(float(amount))


@admin.register(UsageDashboard)
class UsageDashboardAdmin(admin.ModelAdmin[UsageDashboard]):
    """The dashboard stands in for the changelist of a data-less proxy model."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(VIEW_USAGE)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(VIEW_USAGE)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            days = int(request.GET.get("days", "30"))
        except ValueError:
            days = 30
        if days not in RANGE_CHOICES:
            days = 30
        end = periods.utc_day(periods.now())
        stats = selectors.system_stats(start=end - timedelta(days=days - 1), end=end)
        names = [day["day"].strftime("%m-%d") for day in stats["days"]]
        context = {
            **self.admin_site.each_context(request),
            "title": "Usage dashboard",
            "opts": self.model._meta,
            "days": days,
            "range_choices": RANGE_CHOICES,
            "stats": stats,
            "total_cost": _money_text(stats["totals"]["cost"]),
            "error_rate": f"{stats['totals']['error_rate']:.1%}",
            "tokens_chart": charts.column_chart(
                title="Tokens per day",
                names=names,
                series=[
                    [day["input_tokens"] for day in stats["days"]],
                    [day["output_tokens"] for day in stats["days"]],
                ],
                legend=["input", "output"],
                empty_text="These calls counted no tokens.",
            ),
            "cost_chart": charts.line_chart(
                title="Cost per day",
                names=names,
                values=[day["cost"] for day in stats["days"]],
                fmt=charts.format_money,
                empty_text=NO_COST,
            ),
            "models_chart": charts.bar_list(
                title="Cost by model",
                items=[(row["model"], row["cost"]) for row in stats["models"][:10]],
                fmt=charts.format_money,
                empty_text=NO_COST_TO_RANK,
            ),
            "users_chart": charts.bar_list(
                title="Top users by cost",
                items=[(row["email"], row["cost"]) for row in stats["top_users"]],
                fmt=charts.format_money,
                empty_text=NO_COST_TO_RANK,
            ),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/billing/usagedashboard/dashboard.html", context)
