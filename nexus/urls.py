"""The HTTP map of shared/DESIGN.md: each app owns its paths; the project adds the rest."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from nexus import api, views

admin.site.site_header = "Nexus administration"
admin.site.site_title = "Nexus"
admin.site.index_title = "Operator's console"

urlpatterns = [
    path("health", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("system/settings", api.RuntimeSettingsView.as_view(), name="system-settings"),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("llm.urls")),
    path("", include("billing.urls")),
    path("", include("chats.urls")),
]
