"""Nexus's own `manage.py check --deploy` checks, beside Django's security ones."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

UNCONFIGURED_MAIL = "nexus.lib.unconfigured_mail.UnconfiguredEmailBackend"
CONSOLE_MAIL = "django.core.mail.backends.console.EmailBackend"


@register(Tags.security, deploy=True)
def mail_server_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Production needs a mail server: without one, password-reset mail cannot be sent."""
    if settings.DEBUG or settings.EMAIL_BACKEND not in (UNCONFIGURED_MAIL, CONSOLE_MAIL):
        return []
    return [
        Error(
            "EMAIL_HOST is not set: Nexus cannot send password-reset mail.",
            hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD) to your SMTP "
            "server. Mail is never printed to the log in production: a reset link signs in as its owner.",
            id="nexus.E001",
        )
    ]
