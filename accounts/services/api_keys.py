"""API keys: creation, limits, revocation, authentication."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from rest_framework.exceptions import AuthenticationFailed, ValidationError

from accounts import restrictions
from accounts.models import ApiKey, User
from accounts.selectors import (
    api_key_by_digest,
    credentials_invalidate,
)
from accounts.services.audit import AnyRequest, audit_event_record

API_KEY_PREFIX = "nx-"
API_KEY_VISIBLE_CHARS = 12  # "nx-" and 9 characters of the secret, enough to tell keys apart
API_KEY_TOUCH_SECONDS = 60


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
