"""JWT sessions: issue, rotate and end token pairs, and authenticate access tokens.

A session is a refresh token, recorded by simplejwt's blacklist app as an OutstandingToken,
and the short-lived access tokens made from it. Rotating a refresh token blacklists the old
one; ending a session blacklists the refresh token and denies the access token's `jti` in
the cache until the token would have expired. Tokens carry a digest of the password hash
(simplejwt's CHECK_REVOKE_TOKEN), so a changed password ends every session at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password

from accounts.errors import ServiceUnavailable
from accounts.models import User
from accounts.selectors import user_by_id

logger = logging.getLogger(__name__)

T = TypeVar("T")

_DENIED_KEY = "accounts:denied-access:{jti}"


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def _token_not_valid(message: str) -> AuthenticationFailed:
    return AuthenticationFailed(message, code="token_not_valid")


def _ask_cache(operation: Callable[[], T]) -> T:
    """A cache call whose failure ends the request with 503, never a guess nor a 500."""
    try:
        return operation()
    except Exception as exc:  # whatever the backend raises, the denylist cannot be read
        logger.warning("The cache is unreachable for the token denylist: %s", type(exc).__name__)
        raise ServiceUnavailable() from exc


def token_pair_issue(*, user: User) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def token_user(token: Token) -> User:
    """The active user a verified token was issued to, while their password is unchanged."""
    user_id = token.get(api_settings.USER_ID_CLAIM)
    try:
        user = user_by_id(user_id=int(user_id))
    except (TypeError, ValueError):
        user = None
    if user is None or not user.is_active:
        raise AuthenticationFailed("The account of this token is inactive or deleted.", code="user_inactive")
    if token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
        raise _token_not_valid("The password was changed since this token was issued: sign in again.")
    return user


def access_token_validate(raw: str | bytes) -> AccessToken:
    """Signature, expiry, type, and not logged out; raises AuthenticationFailed otherwise."""
    try:
        token = AccessToken(raw)  # type: ignore[arg-type]  # simplejwt takes the encoded token
    except TokenError as exc:
        raise _token_not_valid(str(exc.args[0]) if exc.args else "The token is not valid.") from None
    jti = token[api_settings.JTI_CLAIM]
    if _ask_cache(lambda: cache.get(_DENIED_KEY.format(jti=jti))) is not None:
        raise _token_not_valid("This token was logged out.")
    return token


def access_token_authenticate(raw: str | bytes) -> tuple[User, AccessToken]:
    token = access_token_validate(raw)
    return token_user(token), token


def access_token_deny(token: Token) -> None:
    """Refuses this access token from now until it expires."""
    remaining = int(token["exp"] - timezone.now().timestamp()) + 1
    if remaining <= 0:
        return
    key = _DENIED_KEY.format(jti=token[api_settings.JTI_CLAIM])
    _ask_cache(lambda: cache.set(key, 1, timeout=remaining))


def _outstanding(payload: dict[str, Any], raw: str) -> OutstandingToken:
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=payload[api_settings.JTI_CLAIM],
        defaults={
            "user_id": payload.get(api_settings.USER_ID_CLAIM),
            "token": raw,
            "created_at": datetime_from_epoch(payload["iat"]) if "iat" in payload else None,
            "expires_at": datetime_from_epoch(payload["exp"]),
        },
    )
    return outstanding


def token_refresh(*, refresh: str) -> TokenPair:
    """A new pair for a valid refresh token, which is used up: presenting it again is a 401."""
    try:
        token = RefreshToken(refresh)  # type: ignore[arg-type]
    except TokenError as exc:
        raise _token_not_valid(str(exc.args[0]) if exc.args else "The token is not valid.") from None
    with transaction.atomic():
        user = token_user(token)
        outstanding = _outstanding(token.payload, refresh)
        try:
            # One row per token (a unique key): of two requests racing with the same token,
            # exactly one gets here, and the other is answered as a reuse.
            with transaction.atomic():
                BlacklistedToken.objects.create(token=outstanding)
        except IntegrityError:
            raise _token_not_valid("Token is blacklisted") from None
        return token_pair_issue(user=user)


def refresh_tokens_revoke(*, user: User) -> None:
    """Blacklists every refresh token of the user that has not expired nor been used up."""
    alive = OutstandingToken.objects.filter(
        user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in alive], ignore_conflicts=True
    )


def session_end(*, user: User, access: Token, refresh: str) -> None:
    """Logout: the refresh token is blacklisted and the access token denied until it expires.

    A refresh token that has expired or was already used up needs nothing more; one that is
    not this user's refresh token is refused, and nothing is changed.
    """
    invalid = ValidationError({"refresh": ["This is not a refresh token of this account."]})
    try:
        payload: dict[str, Any] | None = token_backend.decode(refresh, verify=True)  # type: ignore[arg-type]
    except TokenBackendExpiredToken:
        payload = None
    except TokenBackendError:
        raise invalid from None
    if payload is not None and (
        payload.get(api_settings.TOKEN_TYPE_CLAIM) != RefreshToken.token_type
        or str(payload.get(api_settings.USER_ID_CLAIM)) != str(user.pk)
        or api_settings.JTI_CLAIM not in payload
    ):
        raise invalid
    access_token_deny(access)
    if payload is not None:
        BlacklistedToken.objects.get_or_create(token=_outstanding(payload, refresh))
