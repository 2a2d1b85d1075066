"""Request authentication: JWT access tokens (DRF's default)."""

from __future__ import annotations

from rest_framework_simplejwt import authentication


class JWTAuthentication(authentication.JWTAuthentication):
    """simplejwt's access-token authentication; logout denial is added by the accounts issue."""
