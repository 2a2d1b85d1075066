"""Passwords: change, and reset by an emailed link."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.views.decorators.debug import sensitive_variables
from rest_framework.exceptions import ValidationError

from accounts import throttles, tokens
from accounts.models import User, normalize_email
from accounts.services.audit import AnyRequest, audit_event_record
from accounts.services.registration import _password_errors
from accounts.tokens import TokenPair

logger = logging.getLogger(__name__)

PASSWORD_RESET_PATH = "/reset-password"


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
