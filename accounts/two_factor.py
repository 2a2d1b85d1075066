"""Two-factor sign-in on django-otp: one TOTP device and one set of recovery codes per user.

django-otp computes and checks the codes, and throttles each device on its own; this module
only decides which devices a user has and which of them a code is for. The use cases that
change them (enrol, confirm, disable) are in accounts.services, which audits them.

A code is a TOTP code (digits) or a recovery code (django-otp's static tokens, used up on
success). Devices are locked while a code is checked, so two requests cannot both spend the
same recovery code or the same TOTP time step.
"""

from __future__ import annotations

from base64 import b32encode

from django.conf import settings
from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.exceptions import APIException

from accounts.models import User

RECOVERY_CODE_COUNT = 10
DEVICE_NAME = "default"
# Where the console's login form leaves the audit action of a refusal past the password
# (a missing or wrong code), for services.console_login, which audits every attempt.
CONSOLE_FAILURE_ATTRIBUTE = "nexus_console_login_failure"


class TwoFactorConflict(APIException):
    """409: enrolling when 2FA is on already, confirming or disabling what is not there."""

    status_code = 409
    default_code = "two_factor_conflict"
    default_detail = "Two-factor sign-in is not in the state this needs."


def staff_require_2fa() -> bool:
    return bool(settings.STAFF_REQUIRE_2FA)


def user_has_2fa(user: User) -> bool:
    """True once the user has confirmed a TOTP device: from then on sign-in asks for a code."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def totp_device_pending(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def totp_device_create(user: User) -> TOTPDevice:
    """A new unconfirmed device; an earlier unconfirmed one (an enrolment never finished) goes."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def totp_device_confirm(device: TOTPDevice) -> bool:
    """Marks the pending device confirmed; False when it was not pending any more."""
    return bool(TOTPDevice.objects.filter(pk=device.pk, confirmed=False).update(confirmed=True))


def totp_secret(device: TOTPDevice) -> str:
    """The key as authenticator apps take it when typed in (base32, as in the otpauth URL)."""
    return b32encode(device.bin_key).decode()


def recovery_codes_issue(user: User) -> list[str]:
    """A fresh set of recovery codes; any earlier set stops working."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def devices_delete(user: User) -> None:
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()


def code_verify(user: User, code: str) -> Device | None:
    """The confirmed device that accepts `code` (a recovery code is used up), or None.

    Digits go to the TOTP device only and anything else to the recovery codes only, so a
    wrong code counts against one device's throttle, not both.
    """
    code = "".join(code.split()).lower()
    if not code:
        return None
    devices: type[TOTPDevice] | type[StaticDevice] = TOTPDevice if code.isdigit() else StaticDevice
    with transaction.atomic():
        for device in devices.objects.filter(user=user, confirmed=True).select_for_update():
            if device.verify_token(code):
                return device
    return None


def pending_code_verify(device: TOTPDevice, code: str) -> bool:
    """Checks the first code of an unconfirmed device (the proof that the app was set up)."""
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        return bool(locked.verify_token("".join(code.split())))
