"""Request authentication: JWT access tokens (DRF's default) and API keys (AI endpoints)."""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework_simplejwt import authentication


class JWTAuthentication(authentication.JWTAuthentication):
    """simplejwt's access-token authentication; logout denial is added by the accounts issue."""


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer nx-...`; implemented by the accounts issue."""

    def authenticate(self, request: Request) -> None:
        return None
