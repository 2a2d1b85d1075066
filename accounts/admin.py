"""The operator's console for accounts: users and roles, groups, API keys, the audit trail.

Changes go through the same services as the API, so the same rules hold here: nobody raises
their own role, the last active admin stays, a key's secret is shown once, audit is read-only.
The console's sign-in (/admin/login/) runs on the API's login throttle and audit trail, and
asks for the two-factor code of accounts that have one (STAFF_REQUIRE_2FA: of every account).
"""

from __future__ import annotations

import functools
import math
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.utils import timezone
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.exceptions import APIException

from accounts import restrictions, selectors, services, two_factor
from accounts.admin_tokens import OutstandingTokenAdmin  # noqa: F401  # replaces simplejwt's token pages
from accounts.errors import ServiceUnavailable, TooManyAttempts
from accounts.hashers import HashingBusy
from accounts.models import ApiKey, AuditEvent, Role, User
from nexus.lib.admin import ReadOnlyAdmin


class RoleFilter(admin.SimpleListFilter):
    title = "role"
    parameter_name = "role"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(Role.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        if self.value() in Role.values:
            return queryset.filter(pk__in=selectors.user_list(role=self.value() or "").values("pk"))
        return queryset


class RoleFormMixin(forms.ModelForm):
    """The role as one choice; the rules of the API are checked when the form is cleaned."""

    role = forms.ChoiceField(choices=Role.choices, initial=Role.USER)
    actor: User | None = None  # set by UserAdmin.get_form

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["role"].initial = selectors.user_role(self.instance)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        user = self.instance
        if not user.pk or self.actor is None:
            return cleaned
        current, role = selectors.user_role(user), cleaned.get("role", "")
        if (
            role
            and user.pk == self.actor.pk
            and selectors.ROLE_RANK[Role(role)] > selectors.ROLE_RANK[Role(current)]
        ):
            self.add_error("role", "You cannot raise your own role.")
        # clean() runs before the form writes to the instance: it still holds the stored values.
        leaving = (current == Role.ADMIN and role != Role.ADMIN) or (
            user.is_active and not cleaned.get("is_active", True)
        )
        if leaving and selectors.user_is_last_active_admin(user):
            raise forms.ValidationError("This is the last active admin: make someone else an admin first.")
        return cleaned


class UserCreationForm(RoleFormMixin, auth_forms.BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "nickname")


class UserChangeForm(RoleFormMixin, auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = ("email", "password", "nickname", "is_active", "user_permissions")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ("-created_at",)
    list_display = ("email", "nickname", "role", "is_active", "created_at", "last_login")
    list_filter = (RoleFilter, "is_active")
    search_fields = ("email", "nickname")
    readonly_fields = ("created_at", "last_login", "is_staff", "is_superuser")
    fieldsets = (
        (None, {"fields": ("email", "password", "nickname")}),
        ("Access", {"fields": ("role", "is_active", "is_staff", "is_superuser")}),
        ("Extra permissions", {"classes": ("collapse",), "fields": ("user_permissions",)}),
        ("Dates", {"fields": ("created_at", "last_login")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "nickname", "role", "password1", "password2")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("groups")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user  # type: ignore[attr-defined]  # read in RoleFormMixin.clean
        return form

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, so the last admin cannot go in a batch
        return actions

    @admin.display(description="role")
    def role(self, user: User) -> str:
        return selectors.user_role(user)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        role = form.cleaned_data["role"]
        if not change:
            super().save_model(request, obj, form, change)
            services.user_role_assign(user=obj, role=role)
            services.audit_event_record(
                action="user.created",
                actor=request.user if isinstance(request.user, User) else None,
                target=f"user:{obj.pk}",
                request=request,
                metadata={"email": obj.email, "role": role},
            )
            return
        is_active = obj.is_active
        obj.is_active = form.initial.get("is_active", obj.is_active)  # changed by the service below
        super().save_model(request, obj, form, change)
        if not isinstance(request.user, User):  # the admin site lets only signed-in staff here
            raise PermissionDenied
        try:
            updated = services.user_admin_update(
                actor=request.user, user=obj, role=role, is_active=is_active, request=request
            )
        except APIException as exc:  # a concurrent change made it break a rule after all
            messages.error(request, str(exc.detail))
            return
        obj.is_active, obj.is_staff, obj.is_superuser = (
            updated.is_active,
            updated.is_staff,
            updated.is_superuser,
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and selectors.user_is_last_active_admin(obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        services.user_remove(
            user=obj, actor=request.user if isinstance(request.user, User) else None, request=request
        )


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    """Roles are the groups `admin` and `user`; their permissions are what each role may do."""

    list_display = ("name", "permission_count", "member_count")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Group]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                permission_total=Count("permissions", distinct=True),
                member_total=Count("user", distinct=True),
            )
        )

    @admin.display(description="permissions", ordering="permission_total")
    def permission_count(self, group: Any) -> int:
        return int(group.permission_total)

    @admin.display(description="members", ordering="member_total")
    def member_count(self, group: Any) -> int:
        return int(group.member_total)


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


class _LinesField(forms.CharField):
    """A list edited as text, one entry a line (commas also separate)."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [entry.strip() for entry in text.replace(",", "\n").splitlines() if entry.strip()]


class ApiKeyForm(forms.ModelForm):
    allowed_models = _LinesField(
        required=False, help_text="Model names this key may use, one a line; empty: every model."
    )
    allowed_networks = _LinesField(
        required=False,
        help_text="Client address ranges in CIDR form (203.0.113.0/24, 2001:db8::/32), one a line; "
        "empty: any address.",
    )

    class Meta:
        model = ApiKey
        fields = ("user", "name", "expires_at", "allowed_models", "allowed_networks")

    def clean_allowed_models(self) -> list[str]:
        try:
            return restrictions.models_clean(self.cleaned_data.get("allowed_models") or [])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_allowed_networks(self) -> list[str]:
        try:
            return restrictions.networks_clean(self.cleaned_data.get("allowed_networks") or [])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_expires_at(self) -> Any:
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now() and "expires_at" in self.changed_data:
            raise forms.ValidationError("The expiry must be in the future.")
        return expires_at


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    form = ApiKeyForm
    list_display = ("name", "prefix", "user", "created_at", "last_used_at", "expires_at", "status")
    list_filter = (ApiKeyStatusFilter, "created_at")
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__email")
    raw_id_fields = ("user",)
    actions = ("revoke_keys",)
    created_template = "admin/accounts/apikey/created.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("user", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        limits = ("allowed_models", "allowed_networks")
        if obj is None:
            return ("user", "name", "expires_at", *limits)
        return ("user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at", *limits)

    @admin.display(description="status")
    def status(self, key: ApiKey) -> str:
        if key.revoked:
            return "revoked"
        return "active" if key.is_usable() else "expired"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        actor = request.user if isinstance(request.user, User) else None
        if change:
            # The form has already set the lists on obj: through the service, for its audit event.
            restricted = {"allowed_models": obj.allowed_models, "allowed_networks": obj.allowed_networks}
            obj.allowed_models, obj.allowed_networks = (form.initial.get(name) or [] for name in restricted)
            super().save_model(request, obj, form, change)
            services.api_key_update(key=obj, **restricted, actor=actor, request=request)
            return
        key, secret = services.api_key_create(
            user=obj.user,
            name=obj.name,
            expires_at=obj.expires_at,
            allowed_models=obj.allowed_models,
            allowed_networks=obj.allowed_networks,
            actor=actor,
            request=request,
        )
        obj.pk, obj.prefix, obj.digest, obj.created_at = key.pk, key.prefix, key.digest, key.created_at
        obj._state.adding = False
        obj.one_time_secret = secret  # type: ignore[attr-defined]  # for response_add; never stored

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        """Shows the secret on this one page, and nowhere else, ever."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "key": obj,
            "secret": getattr(obj, "one_time_secret", ""),
            "title": "API key created",
        }
        # Admin views are never_cache (no-store): the page is not kept by any cache either.
        return TemplateResponse(request, self.created_template, context)

    @admin.action(description="Revoke the selected API keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        actor = request.user if isinstance(request.user, User) else None
        revoked = 0
        for key in queryset.select_related("user").filter(revoked_at__isnull=True):
            services.api_key_revoke(key=key, actor=actor, request=request)
            revoked += 1
        self.message_user(request, f"{revoked} API key(s) revoked.", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: an audit trail nobody can edit, here or anywhere."""

    list_display = ("created_at", "action", "actor_label", "target", "ip")
    list_filter = ("action", "created_at")
    search_fields = ("action", "target", "actor__email")
    date_hierarchy = "created_at"
    list_select_related = ("actor",)
    fields = ("created_at", "action", "actor", "target", "ip", "user_agent", "metadata")

    @admin.display(description="actor", ordering="actor__email")
    def actor_label(self, event: AuditEvent) -> str:
        if event.actor is not None:
            return event.actor.email
        return str((event.metadata or {}).get("actor_email") or "—")


# --- the console's door ---------------------------------------------------------------------

# Device admin would show TOTP keys and recovery codes: no secret is readable by staff. A
# user turns two-factor sign-in off through the API, with a code.
for _device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_device_model):
        admin.site.unregister(_device_model)


class ConsoleLoginForm(OTPAdminAuthenticationForm):
    """The admin's login form with django-otp's code field: the code is required from an
    account with two-factor sign-in, and, with STAFF_REQUIRE_2FA, every account must have it.

    The code may be a TOTP code or a recovery code, so no device is chosen (its select and
    challenge button are dropped): accounts.two_factor picks the device by the code's kind.
    The device that accepted it is left on the user, where django-otp's login signal keeps it
    in the session (request.user.is_verified()).
    """

    otp_device = None
    otp_challenge = None
    otp_token = forms.CharField(
        required=False,
        label="Two-factor code",
        help_text="From your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )

    def clean(self) -> dict[str, Any]:
        # The password and staff checks of Django's admin form; the second factor as below.
        cleaned: dict[str, Any] = AdminAuthenticationForm.clean(self)
        user = self.get_user()
        if isinstance(user, User):
            self._second_factor(user)
        return cleaned

    def _second_factor(self, user: User) -> None:
        user.otp_device = None  # type: ignore[attr-defined]
        if not two_factor.user_has_2fa(user):
            if two_factor.staff_require_2fa():
                self._refuse(
                    "login.enrolment_required",
                    "The console needs two-factor sign-in. Enrol through the API (POST /users/me/2fa, "
                    "then POST /users/me/2fa/confirm with a code), then sign in here with a code.",
                )
            return
        code = str(self.cleaned_data.get("otp_token") or "")
        if not code:
            self._refuse("login.otp_required", "Enter the code from your authenticator app.")
        device = two_factor.code_verify(user, code)
        if device is None:
            self._refuse("login.otp_failed", "The two-factor code is not correct.")
        user.otp_device = device  # type: ignore[attr-defined]

    def _refuse(self, action: str, message: str) -> None:
        if self.request is not None:
            setattr(self.request, two_factor.CONSOLE_FAILURE_ATTRIBUTE, action)
        raise forms.ValidationError(message, code=action.removeprefix("login."))


def _console_has_permission(site_has_permission: Any) -> Any:
    """With STAFF_REQUIRE_2FA, a session counts for the console only when a code verified it."""

    @functools.wraps(site_has_permission)
    def has_permission(request: HttpRequest) -> bool:
        if not site_has_permission(request):
            return False
        if not two_factor.staff_require_2fa():
            return True
        is_verified = getattr(request.user, "is_verified", None)
        return bool(is_verified is not None and is_verified())

    return has_permission


def _console_login(site_login: Any) -> Any:
    """The admin site's login view, throttled and audited on the API's counters
    (services.console_login); a refusal is a page with the status the API would send."""

    @functools.wraps(site_login)
    def login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponseBase:
        extra_context = {**(extra_context or {}), "staff_require_2fa": two_factor.staff_require_2fa()}
        try:
            return services.console_login(request=request, sign_in=lambda: site_login(request, extra_context))
        except (TooManyAttempts, HashingBusy, ServiceUnavailable) as refusal:
            context = {
                **admin.site.each_context(request),
                "title": "Sign-in refused",
                "refusal": str(refusal.detail),
                "form": None,
            }
            response = TemplateResponse(
                request, "admin/accounts/login_refused.html", context, status=refusal.status_code
            )
            wait = getattr(refusal, "wait", None)
            if wait:
                response["Retry-After"] = str(max(1, math.ceil(wait)))
            return response

    return login


admin.site.login_form = ConsoleLoginForm
admin.site.login_template = "admin/accounts/login.html"
admin.site.has_permission = _console_has_permission(admin.site.has_permission)  # type: ignore[method-assign]
admin.site.login = _console_login(admin.site.login)  # type: ignore[method-assign]
