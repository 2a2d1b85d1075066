"""Registration and roles."""

from __future__ import annotations

import logging

from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables
from rest_framework.exceptions import PermissionDenied, ValidationError

from accounts import throttles, tokens
from accounts.errors import LastAdmin
from accounts.models import Role, User, normalize_email
from accounts.selectors import (
    ROLE_RANK,
    user_is_last_active_admin,
    user_role,
)
from accounts.services.audit import AnyRequest, audit_event_record

logger = logging.getLogger(__name__)


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
