"""The profile: changes, deletion by its owner, removal by an administrator."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables
from rest_framework.exceptions import ValidationError
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.errors import LastAdmin
from accounts.models import User, normalize_email
from accounts.selectors import (
    user_is_last_active_admin,
)
from accounts.services.audit import AnyRequest, audit_event_record
from accounts.services.registration import EMAIL_TAKEN, _email_taken, _lock_roles


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
