"""Two-factor sign-in: enrolment, confirmation and removal (accounts.two_factor)."""

from __future__ import annotations

from django.db import transaction
from django.views.decorators.debug import sensitive_variables
from rest_framework.exceptions import ValidationError

from accounts import two_factor
from accounts.models import User
from accounts.services.audit import AnyRequest, audit_event_record


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
