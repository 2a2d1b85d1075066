"""`{% operator_dashboard %}`: the figures on the admin home, for those allowed to see them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse

from billing.charts import format_count, format_money
from billing.permissions import VIEW_USAGE
from nexus.dashboard import dashboard_get
from nexus.lib import runtime

register = template.Library()


def _usage_records(**filters: object) -> str:
    query = urlencode(filters)
    return reverse("admin:billing_usagerecord_changelist") + (f"?{query}" if query else "")


@register.inclusion_tag("admin/nexus/dashboard.html", takes_context=True)
def operator_dashboard(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_staff:
        return {"visible": False}
    config = runtime.current()
    figures: dict[str, Any] = {
        "visible": True,
        "maintenance_mode": config.maintenance_mode,
        "maintenance_message": config.maintenance_message or runtime.DEFAULT_MAINTENANCE_MESSAGE,
        "registration_open": config.registration_open,
        "settings_url": reverse("admin:nexus_runtimesettings_changelist")
        if user.has_perm("nexus.view_runtimesettings")
        else "",
        "show_usage": user.has_perm(VIEW_USAGE),
        "users_url": reverse("admin:accounts_user_changelist") if user.has_perm("accounts.view_user") else "",
    }
    if not figures["show_usage"] and not figures["users_url"]:
        return figures
    dashboard = dashboard_get()
    today, month = dashboard.usage_today, dashboard.usage_month
    day = {"created_at__year": dashboard.today.year, "created_at__month": dashboard.today.month}
    figures.update(
        {
            "users_total": format_count(dashboard.users_total),
            "users_active_today": format_count(dashboard.users_active_today),
            "periods": [
                {
                    "name": "Today",
                    "calls": format_count(today.calls),
                    "tokens": format_count(today.tokens),
                    "cost": format_money(float(today.cost)),
                    "error_rate": f"{today.error_rate:.1%}",
                    "url": _usage_records(**day, created_at__day=dashboard.today.day),
                    "failed_url": _usage_records(
                        **day, created_at__day=dashboard.today.day, outcome__exact="failed"
                    ),
                },
                {
                    "name": "This month",
                    "calls": format_count(month.calls),
                    "tokens": format_count(month.tokens),
                    "cost": format_money(float(month.cost)),
                    "error_rate": f"{month.error_rate:.1%}",
                    "url": _usage_records(**day),
                    "failed_url": _usage_records(**day, outcome__exact="failed"),
                },
            ],
            "models": [
                {
                    **row,
                    "calls": format_count(row["calls"]),
                    "tokens": format_count(row["tokens"]),
                    "cost": format_money(float(row["cost"])),
                    "error_rate": f"{row['error_rate']:.1%}",
                    "url": _usage_records(**day, model_name=row["model"]),
                }
                for row in dashboard.busiest_models
            ],
            "dashboard_url": reverse("admin:billing_usagedashboard_changelist"),
            "audit_url": reverse("admin:accounts_auditevent_changelist")
            if user.has_perm("accounts.view_auditevent")
            else "",
        }
    )
    return figures
