"""The model catalog in the admin: providers (keys write-only, a connection test) and models,
with their fallbacks and aliases."""

from __future__ import annotations

import dataclasses
from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from llm import crypto, selectors, services
from llm.models import Model, ModelAlias, ModelFallback, Provider
from llm.types import CAPABILITIES, LLMError, ModelTarget

# A connection test should answer quickly or say why not.
_TEST_TIMEOUT = 15.0


class ProviderForm(forms.ModelForm[Provider]):
    base_url = forms.URLField(
        label="Base URL",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="Empty: the SDK's default. Required for Azure OpenAI and OpenAI-compatible servers.",
    )
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown. Leave blank to keep the current key.",
    )
    clear_api_key = forms.BooleanField(label="Remove the API key", required=False)

    class Meta:
        model = Provider
        fields = (
            "name",
            "kind",
            "base_url",
            "api_key",
            "clear_api_key",
            "api_version",
            "extra_headers",
            "connect_timeout",
            "first_token_timeout",
            "idle_timeout",
            "total_timeout",
            "max_retries",
            "enabled",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("api_key") and cleaned.get("clear_api_key"):
            self.add_error("clear_api_key", "Either set a new key or remove it, not both.")
        return cleaned


class ModelInline(admin.TabularInline[Model, Provider]):
    model = Model
    extra = 0
    # What fits the provider's page on a laptop's screen; each model's own page (its Change
    # link) has the rest.
    fields = (
        "name",
        "upstream_name",
        "enabled",
        "input_price_per_million",
        "output_price_per_million",
        "context_window",
    )
    show_change_link = True


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin[Provider]):
    form = ProviderForm
    list_display = ("name", "kind", "base_url", "has_api_key", "enabled")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "base_url")
    inlines = (ModelInline,)
    actions = ("test_connection",)
    readonly_fields = ("created_at", "updated_at")

    @admin.display(boolean=True, description="API key")
    def has_api_key(self, provider: Provider) -> bool:
        return bool(provider.api_key_encrypted)

    def save_model(self, request: HttpRequest, obj: Provider, form: Any, change: bool) -> None:
        if form.cleaned_data.get("clear_api_key"):
            obj.api_key_encrypted = ""
        elif form.cleaned_data.get("api_key"):
            obj.api_key_encrypted = crypto.encrypt(form.cleaned_data["api_key"])
        super().save_model(request, obj, form, change)

    @admin.action(description="Test the connection (a one-token call)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            model = provider.models.filter(enabled=True).order_by("name").first() or provider.models.first()
            if model is None:
                self.message_user(request, f"{provider}: add a model first, to call.", messages.WARNING)
                continue
            target = _test_target(selectors.model_target(model))
            try:
                seconds = async_to_sync(services.provider_test_connection)(target=target)
            except LLMError as error:
                self.message_user(
                    request,
                    f"{provider} ({model}): {error.code}: {error.detail or error.message}",
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request, f"{provider} ({model}) answered in {seconds * 1000:.0f} ms.", messages.SUCCESS
                )


def _test_target(target: ModelTarget) -> ModelTarget:
    """The model as it is, but never from the cache, with no retries and short timeouts."""
    provider = dataclasses.replace(
        target.provider,
        max_retries=0,
        first_token_timeout=min(target.provider.first_token_timeout, _TEST_TIMEOUT),
        total_timeout=min(target.provider.total_timeout, _TEST_TIMEOUT),
    )
    return dataclasses.replace(target, provider=provider, cache_enabled=False)


class ModelFallbackInline(admin.TabularInline[ModelFallback, Model]):
    model = ModelFallback
    fk_name = "model"
    extra = 0
    fields = ("position", "fallback")
    ordering = ("position", "id")
    verbose_name = "fallback"
    verbose_name_plural = "Fallbacks, tried in order when this model fails before its first token"


class ModelAliasInline(admin.TabularInline[ModelAlias, Model]):
    model = ModelAlias
    extra = 0
    fields = ("name",)
    verbose_name = "alias"
    verbose_name_plural = (
        "Aliases: other names clients may ask for this model by, such as an app's default gpt-4o-mini"
    )


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin[ModelAlias]):
    """Every alias on one page; each model's page edits its own."""

    list_display = ("name", "model", "model_kind", "model_provider")
    list_filter = ("model__kind", "model__provider")
    list_select_related = ("model__provider",)
    search_fields = ("name", "model__name")
    autocomplete_fields = ("model",)
    readonly_fields = ("created_at",)

    @admin.display(description="kind", ordering="model__kind")
    def model_kind(self, alias: ModelAlias) -> str:
        return alias.model.get_kind_display()

    @admin.display(description="provider", ordering="model__provider__name")
    def model_provider(self, alias: ModelAlias) -> str:
        return alias.model.provider.name


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin[Model]):
    # What fits a laptop's screen beside the filters; the upstream name is on the model's page.
    list_display = (
        "name",
        "kind",
        "provider",
        "enabled",
        "input_price_per_million",
        "output_price_per_million",
        "context_window",
        "capability_list",
    )
    list_filter = (
        "enabled",
        "kind",
        "provider__kind",
        "provider",
        "supports_vision",
        "supports_tools",
        "supports_structured_output",
        "supports_reasoning",
        "drop_params",
    )
    list_select_related = ("provider",)
    search_fields = ("name", "upstream_name", "display_name", "aliases__name")
    inlines = (ModelAliasInline, ModelFallbackInline)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "display_name", "kind", "provider", "upstream_name", "enabled")}),
        ("Prices, per million tokens", {"fields": ("input_price_per_million", "output_price_per_million")}),
        ("Limits", {"fields": ("context_window", "max_output_tokens")}),
        (
            "Capabilities",
            {
                "description": (
                    "What it can do beyond text, and what becomes of a parameter its kind cannot honour."
                ),
                "fields": (
                    "supports_vision",
                    "supports_tools",
                    "supports_structured_output",
                    "supports_reasoning",
                    "drop_params",
                ),
            },
        ),
        ("Behaviour", {"fields": ("default_params", "cache_enabled")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="capabilities")
    def capability_list(self, model: Model) -> str:
        # In CAPABILITIES' order, so the column reads the same on every row.
        has = model.capabilities
        return ", ".join(name.replace("_", " ") for name in CAPABILITIES if name in has) or "text only"
