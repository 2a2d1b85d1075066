"""Request authentication: JWT access tokens (DRF's default) and API keys (AI endpoints).

Both read `Authorization: Bearer ...`; an API key may come as `x-api-key` instead (Anthropic's
clients send it there). A value starting with `nx-` is an API key: the JWT
class leaves it alone (returns None) and ApiKeyAuthentication takes it, on the endpoints that
list it (settings.AI_AUTHENTICATION_CLASSES). Anywhere else a key is no credential at all,
so key management, profile and admin endpoints answer it with 401.
"""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.tokens import Token

from accounts import restrictions, services, tokens
from accounts.models import ApiKey, User
from nexus.lib.client_address import client_address

_API_KEY_PREFIX = services.API_KEY_PREFIX.encode()


class JWTAuthentication(authentication.JWTAuthentication):
    """simplejwt's access-token authentication, which also refuses logged-out tokens (by `jti`,
    in the cache: 503 when the cache cannot be asked) and tokens of inactive or deleted users."""

    def get_raw_token(self, header: bytes) -> bytes | None:
        raw = super().get_raw_token(header)
        if raw is not None and raw.startswith(_API_KEY_PREFIX):
            return None
        return raw

    def get_validated_token(self, raw_token: bytes) -> Token:
        return tokens.access_token_validate(raw_token)

    def get_user(self, validated_token: Token) -> User:  # type: ignore[override]
        return tokens.token_user(validated_token)


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer nx-...`, or `x-api-key: nx-...` as Anthropic's clients send it:
    `request.user` is the key's owner, `request.auth` the ApiKey."""

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(parts) == 2 and parts[0] == "Bearer":
            secret = parts[1]
            if not secret.startswith(services.API_KEY_PREFIX):
                return None  # a JWT, for JWTAuthentication
        elif "HTTP_X_API_KEY" in request.META:
            # Only keys come in x-api-key: whatever it holds is checked as one (a wrong one is a 401).
            secret = request.META["HTTP_X_API_KEY"].strip()
        else:
            return None
        user, key = services.api_key_authenticate(key=secret)
        # As throttles and the audit trail read it: the trusted proxies' word, never a client's.
        restrictions.key_address_check(key=key, address=client_address(request))
        return user, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
