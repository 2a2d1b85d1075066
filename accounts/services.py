"""Account use cases: registration, login and logout, profile, passwords, roles, API keys, audit.

Every function here that changes something security-relevant records an AuditEvent. None
logs or records a password, a token or an API key: a key appears by its prefix only.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group, Permission, update_last_login
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.views.decorators.debug import sensitive_variables
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import Token

from accounts import restrictions, throttles, tokens, two_factor
from accounts.errors import LastAdmin, TooManyAttempts
from accounts.models import ApiKey, AuditEvent, Role, User, normalize_email
from accounts.selectors import (
    ROLE_RANK,
    api_key_by_digest,
    credentials_invalidate,
    user_is_last_active_admin,
    user_role,
)
from accounts.tokens import TokenPair
from nexus.lib.client_address import client_address

logger = logging.getLogger(__name__)

AnyRequest = HttpRequest | Request

API_KEY_PREFIX = "nx-"
API_KEY_VISIBLE_CHARS = 12  # "nx-" and 9 characters of the secret, enough to tell keys apart
API_KEY_TOUCH_SECONDS = 60
PASSWORD_RESET_PATH = "/reset-password"


# --- Audit trail ----------------------------------------------------------------------------


def _http_request(request: AnyRequest) -> HttpRequest:
    return request._request if isinstance(request, Request) else request


def _client_ip(request: AnyRequest) -> str | None:
    # The throttles' derivation (TRUSTED_PROXY_COUNT): a forged X-Forwarded-For is not recorded.
    return client_address(request)


def audit_event_record(
    *,
    action: str,
    actor: User | None = None,
    target: str = "",
    request: AnyRequest | None = None,
    metadata: dict[str, Any] | None = None,
) -> AuditEvent:
    """Appends an event; the actor's email goes into metadata so it outlives the account."""
    if actor is not None and not getattr(actor, "pk", None):
        actor = None  # an anonymous request acts as nobody
    data = dict(metadata or {})
    if actor is not None:
        data.setdefault("actor_email", actor.email)
    return AuditEvent.objects.create(
        actor=actor,
        action=action,
        target=target[:255],
        ip=_client_ip(request) if request is not None else None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:512] if request is not None else "",
        metadata=data,
    )


# --- Registration and roles ----------------------------------------------------------------


def _role_group(role: str) -> Group:
    group, created = Group.objects.get_or_create(name=role)
    if created and role == Role.ADMIN:  # migration 0003's group was deleted, by `flush` say
        group.permissions.add(*Permission.objects.all())
    return group


def _password_errors(password: str, user: User) -> list[str]:
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        return list(exc.messages)
    return []


def _email_taken(email: str, *, exclude: User | None = None) -> bool:
    users = User.objects.filter(email__iexact=email)
    if exclude is not None:
        users = users.exclude(pk=exclude.pk)
    return users.exists()


EMAIL_TAKEN = "An account with this email address already exists."


@sensitive_variables("password")
def user_register(
    *, email: str, password: str, nickname: str = "", request: AnyRequest | None = None
) -> User:
    """A new account with the `user` role, or, for an email that has one, the same answer.

    Throttled per client address (the runtime setting `registrations_per_hour`). The password
    is validated first (400 with `fields`), whoever owns the email. When the email already has
    an account, nothing is created, the owner is mailed that someone tried to sign up with
    their address, and the caller gets an unsaved user shaped like a new one: the answer does
    not tell whether the account existed. Both ways hash the password once, so they take as long.
    """
    if request is not None:
        throttles.registration_throttle(request=request)
    user = User(email=normalize_email(email), nickname=nickname)
    if password_errors := _password_errors(password, user):
        raise ValidationError({"password": password_errors})
    user.set_password(password)
    existing = User.objects.filter(email__iexact=user.email).first()
    if existing is None:
        try:
            with transaction.atomic():
                user.save()
                user.groups.add(_role_group(Role.USER))
        except IntegrityError:  # registered a moment ago by a concurrent request
            existing = User.objects.filter(email__iexact=user.email).first()
        else:
            audit_event_record(
                action="user.registered", actor=user, target=f"user:{user.pk}", request=request
            )
            return user
    if existing is not None:
        _signup_attempt_notify(user=existing, request=request)
    user.password = ""  # the unsaved stand-in keeps no hash of what was sent
    return user


def _signup_attempt_notify(*, user: User, request: AnyRequest | None) -> None:
    """Tells the owner of an address that someone tried to register it, and audits it."""
    try:
        send_mail(
            subject="Someone tried to sign up to Nexus with your address",
            message=(
                "Someone tried to create a Nexus account with this email address, which already "
                "has one. No new account was made and nothing of yours was changed.\n\n"
                "If it was you, sign in instead, or reset your password if you have forgotten it. "
                "If it was not you, you can ignore this email."
            ),
            from_email=None,
            recipient_list=[user.email],
        )
    except Exception as exc:  # the mail server's failure is the operator's to see, not the caller's
        logger.error("The sign-up attempt mail for user %s was not sent: %s", user.pk, type(exc).__name__)
    audit_event_record(action="user.register_existing", actor=user, target=f"user:{user.pk}", request=request)


def user_role_assign(*, user: User, role: str) -> None:
    """Sets the role's group, and staff status with it (admins are staff); no checks."""
    admin, member = _role_group(Role.ADMIN), _role_group(Role.USER)
    user.groups.remove(admin, member)
    user.groups.add(admin if role == Role.ADMIN else member)
    user.is_staff = role == Role.ADMIN
    if role != Role.ADMIN:
        user.is_superuser = False
    user.save(update_fields=["is_staff", "is_superuser"])


def _lock_roles() -> None:
    """Serializes every change that could leave no active admin (on the admin group's row)."""
    Group.objects.select_for_update().filter(name=Role.ADMIN).first()


def user_admin_update(
    *,
    actor: User,
    user: User,
    role: str | None = None,
    is_active: bool | None = None,
    request: AnyRequest | None = None,
) -> User:
    """Changes another user's role or activation, as an admin (API and Django admin alike).

    Nobody raises their own role, and the last active admin is never demoted nor deactivated.
    """
    with transaction.atomic():
        _lock_roles()
        user = User.objects.select_for_update().get(pk=user.pk)
        current = user_role(user)
        demoting = role is not None and role != current and current == Role.ADMIN
        if role is not None and user.pk == actor.pk and ROLE_RANK[Role(role)] > ROLE_RANK[Role(current)]:
            raise PermissionDenied("You cannot raise your own role.", code="self_promotion")
        if (demoting or (is_active is False and user.is_active)) and user_is_last_active_admin(user):
            raise LastAdmin()
        target = f"user:{user.pk}"
        if role is not None and role != current:
            user_role_assign(user=user, role=role)
            audit_event_record(
                action="user.role_changed",
                actor=actor,
                target=target,
                request=request,
                metadata={"email": user.email, "from": current, "to": role},
            )
        if is_active is not None and is_active != user.is_active:
            user.is_active = is_active
            user.save(update_fields=["is_active"])
            if not is_active:
                tokens.refresh_tokens_revoke(user=user)
            audit_event_record(
                action="user.activated" if is_active else "user.deactivated",
                actor=actor,
                target=target,
                request=request,
                metadata={"email": user.email},
            )
    return User.objects.prefetch_related("groups").get(pk=user.pk)


# --- Login, refresh, logout ----------------------------------------------------------------


def _login_failed(*, email: str, request: AnyRequest, via: str, action: str = "login.failed") -> None:
    audit_event_record(
        action=action,
        actor=User.objects.filter(email=email).first(),
        target=email,
        request=request,
        metadata={"via": via},
    )


def _login_attempt_begin(*, email: str, request: AnyRequest, via: str) -> throttles.Attempt:
    """Counts the attempt; one refused by the throttle is audited too (`login.throttled`)."""
    try:
        return throttles.login_attempt_begin(request=request, email=email)
    except TooManyAttempts:
        _login_failed(email=email, request=request, via=via, action="login.throttled")
        raise


@sensitive_variables("password", "otp")
def user_login(*, email: str, password: str, otp: str = "", request: AnyRequest) -> tuple[User, TokenPair]:
    """A token pair for the right credentials; one generic 401 for anything else.

    The attempt is counted (accounts.throttles) before any password is checked, atomically,
    so simultaneous attempts get exactly the limit through; it is given back when the password
    was right. Django's backend hashes even for an unknown email, so timing tells nothing;
    every hash waits for a slot (accounts.hashers: 503 busy when none frees in time).

    An account with two-factor sign-in also needs `otp`, a TOTP or recovery code: without one,
    401 `otp_required` (the attempt given back: the password was right); a wrong one, 401
    `invalid_otp`, stays counted as a failure, so codes are guessed no faster than passwords.
    """
    email = normalize_email(email)
    attempt = _login_attempt_begin(email=email, request=request, via="api")
    try:
        user = authenticate(_http_request(request), email=email, password=password)
    except BaseException:  # busy, or the database: the password was not checked
        throttles.login_attempt_unchecked(attempt)
        raise
    if not isinstance(user, User):
        _login_failed(email=email, request=request, via="api")
        raise AuthenticationFailed("The email or password is not correct.", code="invalid_credentials")
    device = None
    if two_factor.user_has_2fa(user):
        if not otp:
            throttles.login_attempt_succeeded(attempt)
            audit_event_record(
                action="login.otp_required", actor=user, target=f"user:{user.pk}", request=request
            )
            raise AuthenticationFailed(
                "This account has two-factor sign-in: send the code from your app as `otp`.",
                code="otp_required",
            )
        device = two_factor.code_verify(user, otp)
        if device is None:
            _login_failed(email=email, request=request, via="api", action="login.otp_failed")
            raise AuthenticationFailed("The two-factor code is not correct.", code="invalid_otp")
    throttles.login_attempt_succeeded(attempt)
    update_last_login(User, user)
    audit_event_record(
        action="login.succeeded",
        actor=user,
        target=f"user:{user.pk}",
        request=request,
        metadata={"via": "api", **_second_factor(device)},
    )
    return user, tokens.token_pair_issue(user=user)


def _second_factor(device: Device | None) -> dict[str, str]:
    """What the audit records of the code that signed someone in: its kind, never the code."""
    if device is None:
        return {}
    return {"otp": "recovery_code" if isinstance(device, StaticDevice) else "totp"}


def console_login(*, request: HttpRequest, sign_in: Callable[[], HttpResponseBase]) -> HttpResponseBase:
    """The console's (/admin/login/) sign-in, `sign_in` being the admin site's own login view:
    on the API's counters and audited alike.

    The view is wrapped rather than its form replaced, so a later step of the console's
    sign-in (a second factor) is inside the same count. Success is the view signing someone in
    (a redirect with an authenticated user); anything else with credentials is a failure.
    Raises TooManyAttempts (429), HashingBusy or ServiceUnavailable (503).
    """
    email = normalize_email(str(request.POST.get("username", "")))
    if request.method != "POST" or not email or not request.POST.get("password"):
        return sign_in()  # nothing to check: the form, or its own "this field is required"
    attempt = _login_attempt_begin(email=email, request=request, via="console")
    try:
        response = sign_in()
    except BaseException:
        throttles.login_attempt_unchecked(attempt)
        raise
    user = getattr(request, "user", None)
    if response.status_code in (301, 302, 303) and isinstance(user, User) and user.is_authenticated:
        throttles.login_attempt_succeeded(attempt)
        audit_event_record(
            action="login.succeeded",
            actor=user,
            target=f"user:{user.pk}",
            request=request,
            metadata={"via": "console", **_second_factor(getattr(user, "otp_device", None))},
        )
    else:
        action = getattr(request, two_factor.CONSOLE_FAILURE_ATTRIBUTE, "login.failed")
        _login_failed(email=email, request=request, via="console", action=action)
    return response


# --- Two-factor sign-in (accounts.two_factor) -------------------------------------------------


def two_factor_enrol_start(*, user: User, request: AnyRequest | None = None) -> tuple[str, str]:
    """Starts enrolment: an unconfirmed TOTP device, whose otpauth:// URL and base32 secret
    are returned this once. Sign-in asks for no code until it is confirmed."""
    if two_factor.user_has_2fa(user):
        raise two_factor.TwoFactorConflict(
            "Two-factor sign-in is on already: turn it off first to enrol a new app.",
            code="two_factor_enabled",
        )
    device = two_factor.totp_device_create(user)
    audit_event_record(action="2fa.enrolment_started", actor=user, target=f"user:{user.pk}", request=request)
    return device.config_url, two_factor.totp_secret(device)


@sensitive_variables("code", "codes")
def two_factor_confirm(*, user: User, code: str, request: AnyRequest | None = None) -> list[str]:
    """Confirms the pending device with a first code from the app; returns the recovery codes,
    which exist in plain text only in this return value's response."""
    device = two_factor.totp_device_pending(user)
    if device is None:
        raise two_factor.TwoFactorConflict(
            "There is no enrolment to confirm: start one with POST /users/me/2fa.", code="no_enrolment"
        )
    if not two_factor.pending_code_verify(device, code):
        audit_event_record(action="2fa.confirm_failed", actor=user, target=f"user:{user.pk}", request=request)
        raise ValidationError({"code": ["The code is not correct: check the app's clock, try the next one."]})
    with transaction.atomic():
        # Conditional: of two simultaneous confirmations, one issues the recovery codes.
        if not two_factor.totp_device_confirm(device):
            raise two_factor.TwoFactorConflict("Two-factor sign-in is on already.", code="two_factor_enabled")
        codes = two_factor.recovery_codes_issue(user)
    audit_event_record(action="2fa.enabled", actor=user, target=f"user:{user.pk}", request=request)
    return codes


@sensitive_variables("password", "code")
def two_factor_disable(*, user: User, password: str, code: str, request: AnyRequest | None = None) -> None:
    """Turns two-factor sign-in off, with the password and a current code (or a recovery code)."""
    if not two_factor.user_has_2fa(user):
        raise two_factor.TwoFactorConflict("Two-factor sign-in is not on.", code="two_factor_disabled")
    if not user.check_password(password):
        audit_event_record(action="2fa.disable_failed", actor=user, target=f"user:{user.pk}", request=request)
        raise ValidationError({"password": ["The password is not correct."]})
    if two_factor.code_verify(user, code) is None:
        audit_event_record(action="2fa.disable_failed", actor=user, target=f"user:{user.pk}", request=request)
        raise ValidationError({"code": ["The two-factor code is not correct."]})
    two_factor.devices_delete(user)
    audit_event_record(action="2fa.disabled", actor=user, target=f"user:{user.pk}", request=request)


def user_logout(*, user: User, access: Token, refresh: str, request: AnyRequest | None = None) -> None:
    tokens.session_end(user=user, access=access, refresh=refresh)
    audit_event_record(action="user.logged_out", actor=user, target=f"user:{user.pk}", request=request)


def bearer_authenticate(*, token: str) -> tuple[User, ApiKey | None]:
    """For callers outside DRF (the WebSocket): a JWT access token or an `nx-` API key.

    Same rules as the HTTP endpoints; raises AuthenticationFailed, or ServiceUnavailable
    (503, an APIException too) when the token denylist cannot be read.
    """
    token = token.strip()
    if token.startswith(API_KEY_PREFIX):
        return api_key_authenticate(key=token)
    user, _ = tokens.access_token_authenticate(token)
    return user, None


# --- Profile --------------------------------------------------------------------------------


@sensitive_variables("password")
def user_profile_update(
    *,
    user: User,
    nickname: str | None = None,
    email: str | None = None,
    password: str | None = None,
    request: AnyRequest | None = None,
) -> User:
    """Nickname freely; a new email only with the current password."""
    fields = []
    if nickname is not None and nickname != user.nickname:
        user.nickname = nickname
        fields.append("nickname")
    old_email = user.email
    if email is not None and normalize_email(email) != user.email:
        if not password or not user.check_password(password):
            raise ValidationError({"password": ["Enter your current password to change your email."]})
        if _email_taken(normalize_email(email), exclude=user):
            raise ValidationError({"email": [EMAIL_TAKEN]})
        user.email = normalize_email(email)
        fields.append("email")
    if not fields:
        return user
    try:
        with transaction.atomic():
            user.save(update_fields=fields)
    except IntegrityError:
        raise ValidationError({"email": [EMAIL_TAKEN]}) from None
    if "email" in fields:
        audit_event_record(
            action="user.email_changed",
            actor=user,
            target=f"user:{user.pk}",
            request=request,
            metadata={"from": old_email, "to": user.email},
        )
    return user


@sensitive_variables("password")
def user_delete(*, user: User, password: str, request: AnyRequest | None = None) -> None:
    """The user deletes their own account, confirming with their password."""
    if not user.check_password(password):
        raise ValidationError({"password": ["The password is not correct."]})
    user_remove(user=user, request=request)


def user_remove(*, user: User, actor: User | None = None, request: AnyRequest | None = None) -> None:
    """Deletes the account and, by cascade, everything it owns; its audit events stay, with a
    null actor and the email in their metadata. The last active admin is never removed."""
    with transaction.atomic():
        _lock_roles()
        if user_is_last_active_admin(user):
            raise LastAdmin("This is the last active admin: make someone else an admin first.")
        user_id, email = user.pk, user.email
        # simplejwt keeps the token rows of deleted users (SET_NULL), tokens and all.
        OutstandingToken.objects.filter(user=user).delete()
        user.delete()
        audit_event_record(
            action="user.deleted",
            actor=actor if actor is not None and actor.pk != user_id else None,
            target=f"user:{user_id}",
            request=request,
            metadata={"email": email},
        )


# --- Passwords ------------------------------------------------------------------------------


@sensitive_variables("old_password", "new_password")
def password_change(
    *, user: User, old_password: str, new_password: str, request: AnyRequest | None = None
) -> TokenPair:
    """Sets a new password, ends every session of the user, and opens a new one for the caller."""
    if not user.check_password(old_password):
        raise ValidationError({"old_password": ["The current password is not correct."]})
    if errors := _password_errors(new_password, user):
        raise ValidationError({"new_password": errors})
    user.set_password(new_password)
    user.save(update_fields=["password"])
    tokens.refresh_tokens_revoke(user=user)
    audit_event_record(action="password.changed", actor=user, target=f"user:{user.pk}", request=request)
    return tokens.token_pair_issue(user=user)


def password_reset_link(*, user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return f"{settings.FRONTEND_URL.rstrip('/')}{PASSWORD_RESET_PATH}?uid={uid}&token={token}"


@sensitive_variables("link")
def password_reset_request(*, email: str, request: AnyRequest) -> None:
    """Mails a reset link to an active account with this email; says nothing either way."""
    email = normalize_email(email)
    throttles.password_reset_throttle(request=request, email=email)
    user = User.objects.filter(email=email, is_active=True).first()
    if user is None or not user.has_usable_password():
        return
    link = password_reset_link(user=user)
    try:
        send_mail(
            subject="Reset your Nexus password",
            message=(
                "Someone asked to reset the password of your Nexus account.\n\n"
                f"To choose a new password, open this link:\n{link}\n\n"
                "If it was not you, ignore this email: your password stays as it is."
            ),
            from_email=None,
            recipient_list=[user.email],
        )
    except Exception as exc:  # the mail server's failure is the operator's to see, not the client's
        logger.error("The password-reset mail for user %s was not sent: %s", user.pk, type(exc).__name__)
    audit_event_record(
        action="password.reset_requested", actor=user, target=f"user:{user.pk}", request=request
    )


def _reset_user(uid: str) -> User | None:
    try:
        return User.objects.filter(pk=int(force_str(urlsafe_base64_decode(uid)))).first()
    except (ValueError, TypeError, OverflowError):
        return None


@sensitive_variables("token")
def password_reset_link_valid(*, uid: str, token: str) -> bool:
    """Whether a reset link still works, without using it up (the reset page asks first)."""
    user = _reset_user(uid)
    return user is not None and default_token_generator.check_token(user, token)


@sensitive_variables("token", "new_password")
def password_reset_confirm(
    *, uid: str, token: str, new_password: str, request: AnyRequest | None = None
) -> None:
    """Sets the password from a reset link. The link works once: the password is in its hash."""
    user = _reset_user(uid)
    if user is None or not default_token_generator.check_token(user, token):
        raise ValidationError({"token": ["This reset link is not valid: it was used, or it expired."]})
    if errors := _password_errors(new_password, user):
        raise ValidationError({"new_password": errors})
    user.set_password(new_password)
    user.save(update_fields=["password"])
    tokens.refresh_tokens_revoke(user=user)
    audit_event_record(action="password.reset", actor=user, target=f"user:{user.pk}", request=request)


# --- API keys -------------------------------------------------------------------------------


def api_key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(
    *,
    user: User,
    name: str,
    expires_at: datetime | None = None,
    allowed_models: list[str] | None = None,
    allowed_networks: list[str] | None = None,
    actor: User | None = None,
    request: AnyRequest | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its secret, which exists only in this return value: it is never stored.

    `allowed_models` and `allowed_networks` limit what the key reaches (accounts.restrictions);
    None or empty: no limit."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})
    limits = _api_key_limits(allowed_models=allowed_models or [], allowed_networks=allowed_networks or [])
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=secret[:API_KEY_VISIBLE_CHARS],
        digest=api_key_digest(secret),
        expires_at=expires_at,
        **limits,
    )
    audit_event_record(
        action="key.created",
        actor=actor or user,
        target=f"key:{key.pk}",
        request=request,
        metadata={"prefix": key.prefix, "name": name, "owner": user.email, **limits},
    )
    return key, secret


def _api_key_limits(**lists: Any) -> dict[str, list[str]]:
    """The restriction lists, validated and normalised; ValidationError names each bad field."""
    cleaners = {"allowed_models": restrictions.models_clean, "allowed_networks": restrictions.networks_clean}
    cleaned: dict[str, list[str]] = {}
    errors: dict[str, list[str]] = {}
    for name, values in lists.items():
        try:
            cleaned[name] = cleaners[name](values)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    return cleaned


def api_key_rename(*, key: ApiKey, name: str) -> ApiKey:
    key.name = name
    key.save(update_fields=["name"])
    return key


def api_key_update(
    *,
    key: ApiKey,
    name: str | None = None,
    allowed_models: list[str] | None = None,
    allowed_networks: list[str] | None = None,
    actor: User | None = None,
    request: AnyRequest | None = None,
) -> ApiKey:
    """Renames the key or changes its restrictions (None: unchanged). A new restriction holds
    from the next request in every process: save() drops the key from the process caches."""
    limits = {
        field: values
        for field, values in (("allowed_models", allowed_models), ("allowed_networks", allowed_networks))
        if values is not None
    }
    cleaned = _api_key_limits(**limits)
    changed = [field for field, values in cleaned.items() if getattr(key, field) != values]
    for field in changed:
        setattr(key, field, cleaned[field])
    if name is not None and name != key.name:
        key.name = name
        changed.append("name")
    if not changed:
        return key
    key.save(update_fields=changed)
    if set(changed) - {"name"}:
        audit_event_record(
            action="key.restricted",
            actor=actor or key.user,
            target=f"key:{key.pk}",
            request=request,
            metadata={
                "prefix": key.prefix,
                "allowed_models": key.allowed_models,
                "allowed_networks": key.allowed_networks,
            },
        )
    return key


def api_key_revoke(*, key: ApiKey, actor: User | None = None, request: AnyRequest | None = None) -> ApiKey:
    """Revokes the key at once (its next request is refused); revoking again changes nothing."""
    now = timezone.now()
    if ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now):
        credentials_invalidate()  # update() sends no signal
        key.revoked_at = now
        audit_event_record(
            action="key.revoked",
            actor=actor or key.user,
            target=f"key:{key.pk}",
            request=request,
            metadata={"prefix": key.prefix, "name": key.name, "owner": key.user.email},
        )
    else:
        key.refresh_from_db(fields=["revoked_at"])
    return key


# When this process last recorded the use of each key (monotonic seconds).
_keys_touched: dict[int, float] = {}


def _api_key_touch(key: ApiKey, now: datetime) -> None:
    """Records use at most once a minute per key: this process remembers its last write, the
    cache the last write of any process, and the UPDATE is conditional, so processes that
    miss the cache still write once a minute."""
    checked = time.monotonic()
    if checked - _keys_touched.get(key.pk, -API_KEY_TOUCH_SECONDS) < API_KEY_TOUCH_SECONDS:
        return
    if len(_keys_touched) > 100_000:
        _keys_touched.clear()
    _keys_touched[key.pk] = checked
    try:
        due = cache.add(f"accounts:key-used:{key.pk}", 1, timeout=API_KEY_TOUCH_SECONDS)
    except Exception:  # the cache is only an optimisation here; the UPDATE's condition holds
        due = True
    if not due:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - timedelta(seconds=API_KEY_TOUCH_SECONDS))
    if ApiKey.objects.filter(stale, pk=key.pk).update(last_used_at=now):
        key.last_used_at = now


@sensitive_variables("key")
def api_key_authenticate(*, key: str) -> tuple[User, ApiKey]:
    """The owner of a usable `nx-` key; AuthenticationFailed for unknown, revoked or expired."""
    api_key = api_key_by_digest(digest=api_key_digest(key)) if key.startswith(API_KEY_PREFIX) else None
    now = timezone.now()
    if api_key is None:
        message = "This API key is not valid."
    elif api_key.revoked_at is not None:
        message = "This API key has been revoked."
    elif api_key.expires_at is not None and api_key.expires_at <= now:
        message = "This API key has expired."
    elif not api_key.user.is_active:
        message = "The account of this API key is inactive."
    else:
        _api_key_touch(api_key, now)
        return api_key.user, api_key
    raise AuthenticationFailed(message, code="invalid_api_key")
