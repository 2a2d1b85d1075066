"""HTTP routes of the billing app."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from billing import dashboard_api, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("billing/quota", views.QuotaView.as_view(), name="billing-quota"),
    path("billing/usage", views.UsageView.as_view(), name="billing-usage"),
    path("system/stats", views.SystemStatsView.as_view(), name="system-stats"),
    # OpenAI's legacy balance, at both prefixes: NextChat joins it to the root URL, other
    # clients to a base URL that ends in /v1.
    path(
        "dashboard/billing/subscription",
        dashboard_api.SubscriptionView.as_view(),
        name="dashboard-subscription",
    ),
    path("dashboard/billing/usage", dashboard_api.UsageView.as_view(), name="dashboard-usage"),
    path(
        "v1/dashboard/billing/subscription",
        dashboard_api.SubscriptionView.as_view(),
        name="v1-dashboard-subscription",
    ),
    path("v1/dashboard/billing/usage", dashboard_api.UsageView.as_view(), name="v1-dashboard-usage"),
]
