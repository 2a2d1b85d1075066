"""HTTP routes of the billing app."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from billing import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("billing/quota", views.QuotaView.as_view(), name="billing-quota"),
    path("billing/usage", views.UsageView.as_view(), name="billing-usage"),
    path("system/stats", views.SystemStatsView.as_view(), name="system-stats"),
]
