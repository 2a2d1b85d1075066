"""The console's own pages, and the admin actions that cross apps.

- Runtime settings: one row, edited on its change page (the list goes straight there);
  saved through nexus.services, so the change is audited and in force everywhere at once.
- Audited admin actions: deactivate/activate users (accounts' rules: never the last
  admin), enable/disable models and providers. llm knows nothing of the audit trail, so
  its admin classes are extended here, where the apps are wired together; the classes of
  accounts, billing and llm are imported first, so the ones registered here are the last.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from rest_framework.exceptions import APIException

from accounts import services as account_services
from accounts.models import User
from billing.admin import UserAdmin as BillingUserAdmin
from llm.admin import ModelAdmin as CatalogModelAdmin
from llm.admin import ProviderAdmin as CatalogProviderAdmin
from llm.models import Model, ModelFallback, Provider
from nexus import services
from nexus.lib import runtime
from nexus.lib.errors import ApiError
from nexus.models import SINGLETON_ID, RuntimeSettings


def _actor(request: HttpRequest) -> User:
    if not isinstance(request.user, User):  # the admin site lets only signed-in staff here
        raise PermissionDenied
    return request.user


# --- runtime settings -----------------------------------------------------------------------


def _optional_bool(value: str) -> bool | None:
    return {"true": True, "false": False}.get(value)


class RuntimeSettingsForm(forms.ModelForm[RuntimeSettings]):
    """Empty fields take the environment's value, which each field's help names."""

    registration_open = forms.TypedChoiceField(
        choices=(), coerce=_optional_bool, empty_value=None, required=False
    )
    default_model = forms.ChoiceField(choices=(), required=False)
    title_model = forms.ChoiceField(choices=(), required=False)

    class Meta:
        model = RuntimeSettings
        fields = runtime.FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        defaults = runtime.environment_defaults()
        cast(forms.ChoiceField, self.fields["registration_open"]).choices = [
            ("", f"As the environment says ({'open' if defaults.registration_open else 'closed'})"),
            ("true", "Open"),
            ("false", "Closed"),
        ]
        if self.instance.registration_open is not None:
            self.initial["registration_open"] = "true" if self.instance.registration_open else "false"
        names = list(Model.objects.order_by("name").values_list("name", flat=True))
        title_names = [*names]
        if self.instance.default_model and self.instance.default_model not in names:
            names.append(self.instance.default_model)
        cast(forms.ChoiceField, self.fields["default_model"]).choices = [
            ("", f"As the environment says ({defaults.default_model})"),
            *((name, name) for name in names),
        ]
        if self.instance.title_model and self.instance.title_model not in title_names:
            title_names.append(self.instance.title_model)
        cast(forms.ChoiceField, self.fields["title_model"]).choices = [
            ("", "None: a conversation is titled with its first words"),
            *((name, name) for name in title_names),
        ]
        for name, default in (
            ("default_monthly_budget", defaults.default_monthly_budget),
            ("ai_calls_per_minute", defaults.ai_calls_per_minute),
            ("registrations_per_hour", defaults.registrations_per_hour),
            ("max_message_chars", defaults.max_message_chars),
        ):
            field = self.fields[name]
            field.help_text = f"{field.help_text} Empty: the environment's value, {default}."
        self.fields["registration_open"].help_text = RuntimeSettings._meta.get_field(
            "registration_open"
        ).help_text
        self.fields["default_model"].help_text = RuntimeSettings._meta.get_field("default_model").help_text
        self.fields["title_model"].help_text = RuntimeSettings._meta.get_field("title_model").help_text


@admin.register(RuntimeSettings)
class RuntimeSettingsAdmin(admin.ModelAdmin[RuntimeSettings]):
    form = RuntimeSettingsForm
    fieldsets = (
        ("Accounts", {"fields": ("registration_open", "registrations_per_hour")}),
        ("Chat", {"fields": ("default_model", "max_message_chars", "title_model")}),
        ("Quotas", {"fields": ("default_monthly_budget", "ai_calls_per_minute")}),
        ("Maintenance", {"fields": ("maintenance_mode", "maintenance_message")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """There is one row: its change page is the list."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        services.runtime_settings_get()
        return HttpResponseRedirect(reverse("admin:nexus_runtimesettings_change", args=[SINGLETON_ID]))

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        if object_id == str(SINGLETON_ID):
            services.runtime_settings_get()  # the row exists from the first look on
        return super().get_object(request, object_id, from_field)

    def response_change(self, request: HttpRequest, obj: RuntimeSettings) -> HttpResponse:
        if not getattr(request, "_nexus_settings_refused", False):
            self.message_user(
                request, "The runtime settings were saved: every server uses them now.", messages.SUCCESS
            )
        return HttpResponseRedirect(request.path)

    def save_model(self, request: HttpRequest, obj: RuntimeSettings, form: Any, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in runtime.FIELDS}
        try:
            services.runtime_settings_update(actor=_actor(request), changes=changes, request=request)
        except ApiError as error:  # the form checked the same rules; a concurrent change did not
            request._nexus_settings_refused = True  # type: ignore[attr-defined]  # read in response_change
            self.message_user(request, error.message, messages.ERROR)


# --- users: audited activation ----------------------------------------------------------------

admin.site.unregister(User)


@admin.register(User)
class UserAdmin(BillingUserAdmin):
    actions = ("deactivate_users", "activate_users")

    def _set_active(self, request: HttpRequest, queryset: QuerySet[User], active: bool) -> None:
        actor, changed = _actor(request), 0
        for user in queryset.exclude(is_active=active):
            try:
                account_services.user_admin_update(actor=actor, user=user, is_active=active, request=request)
            except APIException as exc:  # the last active admin stays
                self.message_user(request, f"{user.email}: {exc.detail}", messages.ERROR)
            else:
                changed += 1
        verb = "activated" if active else "deactivated"
        self.message_user(request, f"{changed} user(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Deactivate the selected users (ends their sessions)", permissions=["change"])
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_active(request, queryset, False)

    @admin.action(description="Activate the selected users", permissions=["change"])
    def activate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_active(request, queryset, True)


# --- the model catalog: audited enabling and disabling -----------------------------------------

admin.site.unregister(Model)
admin.site.unregister(Provider)


@admin.register(Model)
class ModelAdmin(CatalogModelAdmin):
    actions = ("disable_models", "enable_models")

    @admin.action(
        description="Disable the selected models (callers are refused at once)", permissions=["change"]
    )
    def disable_models(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        count = services.models_set_enabled(
            models=queryset, enabled=False, actor=_actor(request), request=request
        )
        self.message_user(request, f"{count} model(s) disabled.", messages.SUCCESS)

    @admin.action(description="Enable the selected models", permissions=["change"])
    def enable_models(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        count = services.models_set_enabled(
            models=queryset, enabled=True, actor=_actor(request), request=request
        )
        self.message_user(request, f"{count} model(s) enabled.", messages.SUCCESS)


@admin.register(Provider)
class ProviderAdmin(CatalogProviderAdmin):
    actions = ("test_connection", "disable_providers", "enable_providers")  # type: ignore[assignment]

    @admin.action(description="Disable the selected providers and their models", permissions=["change"])
    def disable_providers(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        count = services.providers_set_enabled(
            providers=queryset, enabled=False, actor=_actor(request), request=request
        )
        self.message_user(request, f"{count} provider(s) disabled.", messages.SUCCESS)

    @admin.action(description="Enable the selected providers", permissions=["change"])
    def enable_providers(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        count = services.providers_set_enabled(
            providers=queryset, enabled=True, actor=_actor(request), request=request
        )
        self.message_user(request, f"{count} provider(s) enabled.", messages.SUCCESS)


class ModelFallbackAdmin(admin.ModelAdmin[ModelFallback]):
    """Each model's fallbacks are edited on the model's page; this lists them all."""

    list_display = ("model", "position", "fallback")
    list_filter = ("model__provider",)
    list_select_related = ("model", "fallback")
    search_fields = ("model__name", "fallback__name")
    ordering = ("model__name", "position", "id")


if not admin.site.is_registered(ModelFallback):
    admin.site.register(ModelFallback, ModelFallbackAdmin)
