"""Nexus's own `manage.py check --deploy` checks, beside Django's security ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks.security import base as security_base
from django.core.checks.security import csrf as security_csrf
from django.core.checks.security import sessions as security_sessions
from django.utils.module_loading import import_string

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


def _installed(path: str) -> Callable[[], bool]:
    """Whether MIDDLEWARE holds the middleware at `path`, or a subclass of it."""

    def installed() -> bool:
        middleware = import_string(path)
        return any(issubclass(import_string(entry), middleware) for entry in settings.MIDDLEWARE)

    return installed


# Django's security checks look for its middlewares by their dotted paths; Nexus installs them
# as subclasses that skip a thread per hook (nexus.middleware). Those count as installed, so
# every check that depends on one (HSTS, SSL redirect, X-Frame-Options, CSRF and session
# cookies) still runs, and none says the middleware is missing.
for _module, _predicate, _path in (
    (security_base, "_security_middleware", "django.middleware.security.SecurityMiddleware"),
    (security_base, "_xframe_middleware", "django.middleware.clickjacking.XFrameOptionsMiddleware"),
    (security_csrf, "_csrf_middleware", "django.middleware.csrf.CsrfViewMiddleware"),
    (security_sessions, "_session_middleware", "django.contrib.sessions.middleware.SessionMiddleware"),
):
    assert callable(getattr(_module, _predicate)), _predicate  # noqa: S101 - Django renamed it
    setattr(_module, _predicate, _installed(_path))
