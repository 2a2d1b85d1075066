"""Authentication wiring shared by the apps, configured in settings.AI_AUTHENTICATION_CLASSES."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework.authentication import BaseAuthentication


def ai_authentication_classes() -> list[type[BaseAuthentication]]:
    """The classes for endpoints that accept an API key as well as a JWT."""
    return [import_string(path) for path in settings.AI_AUTHENTICATION_CLASSES]
