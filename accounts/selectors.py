"""Reads of the accounts app: roles, user lists, API keys and the audit trail."""

from __future__ import annotations

import copy
from datetime import datetime

from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.models import ApiKey, AuditEvent, Role, User
from nexus.lib.process_cache import ProcessCache

# A role may be changed to a lower one by its holder, never to a higher one.
ROLE_RANK = {Role.USER: 0, Role.ADMIN: 1}


def user_role(user: User) -> str:
    """The user's role name: `admin` for superusers and members of the admin group, else `user`.

    Reads `groups` through `.all()`, so a list that prefetched them makes no query per user.
    """
    if user.is_superuser:
        return Role.ADMIN.value
    if any(group.name == Role.ADMIN for group in user.groups.all()):
        return Role.ADMIN.value
    return Role.USER.value


def _admin_ids() -> QuerySet[User, int]:
    return User.objects.filter(Q(is_superuser=True) | Q(groups__name=Role.ADMIN)).values_list("pk", flat=True)


def active_admins() -> QuerySet[User]:
    return User.objects.filter(is_active=True, pk__in=_admin_ids())


def user_is_last_active_admin(user: User) -> bool:
    return bool(
        user.is_active and user_role(user) == Role.ADMIN and not active_admins().exclude(pk=user.pk).exists()
    )


def user_list(*, search: str = "", role: str = "") -> QuerySet[User]:
    users = User.objects.prefetch_related("groups").order_by("-created_at", "-id")
    if search:
        users = users.filter(email__icontains=search.strip())
    if role == Role.ADMIN:
        users = users.filter(pk__in=_admin_ids())
    elif role == Role.USER:
        users = users.exclude(pk__in=_admin_ids())
    return users


def user_get(*, user_id: int) -> User:
    user = User.objects.prefetch_related("groups").filter(pk=user_id).first()
    if user is None:
        raise Http404
    return user


def api_key_list(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at", "-id")


def api_key_get(*, user: User, key_id: int) -> ApiKey:
    """The caller's key; another user's key is as absent as a key that never was (404)."""
    key = ApiKey.objects.filter(user=user, pk=key_id).first()
    if key is None:
        raise Http404
    return key


def audit_event_list(
    *,
    actor_id: int | None = None,
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all().order_by("-created_at", "-id")
    if actor_id is not None:
        events = events.filter(actor_id=actor_id)
    if action:
        events = events.filter(action=action)
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    return events


# --- credentials, as every authenticated request reads them ------------------------------

# API keys (by digest, with their owner) and users (by id), kept in each process;
# accounts.apps drops them when a key or a user changes. Callers get copies, so nothing a
# request sets on its user (a permission cache, say) outlives the request.
api_keys: ProcessCache[str, ApiKey] = ProcessCache("accounts-api-keys")
users: ProcessCache[int, User] = ProcessCache("accounts-users")


def credentials_invalidate() -> None:
    api_keys.invalidate()
    users.invalidate()


def api_key_by_digest(*, digest: str) -> ApiKey | None:
    """The key with this digest and its user (revoked and expired ones too), or None."""
    try:
        cached = api_keys.get(digest, lambda: ApiKey.objects.select_related("user").get(digest=digest))
    except ApiKey.DoesNotExist:  # not kept: unknown keys must not crowd out real ones
        return None
    key = copy.copy(cached)
    key.user = copy.copy(cached.user)
    return key


def user_by_id(*, user_id: int) -> User | None:
    """The user with this id (active or not), or None."""
    try:
        return copy.copy(users.get(user_id, lambda: User.objects.get(pk=user_id)))
    except User.DoesNotExist:
        return None
