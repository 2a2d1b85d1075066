"""HTTP routes of the llm app."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from llm import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("llm/models", views.ModelListView.as_view(), name="llm-models"),
    path("llm/models/<int:pk>", views.ModelDetailView.as_view(), name="llm-model"),
    path("llm/providers", views.ProviderListView.as_view(), name="llm-providers"),
    path("llm/providers/<int:pk>", views.ProviderDetailView.as_view(), name="llm-provider"),
]
