"""Throttles of the endpoints that take credentials, on django-ratelimit's cache counters.

Failed logins are counted per client IP and per email: after 5 failures in 15 minutes, either
counter answers every further attempt with 429 and Retry-After until its window ends.
Password-reset requests are limited the same way, whether or not the account exists, so the
limit tells nothing about which emails have one. When the cache is down these fail closed.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest
from django_ratelimit.core import get_usage
from rest_framework.request import Request

from accounts.errors import ServiceUnavailable, TooManyAttempts

logger = logging.getLogger(__name__)

LOGIN_FAILURE_RATE = "5/15m"
PASSWORD_RESET_RATE = "5/h"


def _usage(
    request: HttpRequest | Request, *, group: str, key: Any, rate: str, increment: bool
) -> dict[str, Any] | None:
    try:
        return get_usage(request, group=group, key=key, rate=rate, increment=increment)
    except Exception as exc:  # any failure of the cache: the counters cannot be trusted
        logger.warning("The %s throttle could not count (cache unreachable?): %s", group, type(exc).__name__)
        raise ServiceUnavailable("This cannot be done right now; try again shortly.") from exc


def _counters(request: HttpRequest | Request, email: str) -> list[tuple[str, Any]]:
    counters: list[tuple[str, Any]] = [("email", lambda group, request: email)]
    if request.META.get("REMOTE_ADDR"):  # empty behind a unix socket without proxy headers
        counters.insert(0, ("ip", "ip"))
    return counters


def _refuse(usage: dict[str, Any]) -> TooManyAttempts:
    return TooManyAttempts(wait=max(1, usage["time_left"]))


def login_throttle_check(*, request: HttpRequest | Request, email: str) -> None:
    """Refuses the attempt, before any password is checked, once 5 recent ones failed."""
    for name, key in _counters(request, email):
        usage = _usage(
            request, group=f"accounts.login.{name}", key=key, rate=LOGIN_FAILURE_RATE, increment=False
        )
        if usage is not None and usage["count"] >= usage["limit"]:
            raise _refuse(usage)


def login_failure_count(*, request: HttpRequest | Request, email: str) -> None:
    for name, key in _counters(request, email):
        _usage(request, group=f"accounts.login.{name}", key=key, rate=LOGIN_FAILURE_RATE, increment=True)


def password_reset_throttle(*, request: HttpRequest | Request, email: str) -> None:
    """Counts this reset request; refuses it past the limit of its IP or its email."""
    for name, key in _counters(request, email):
        usage = _usage(
            request, group=f"accounts.reset.{name}", key=key, rate=PASSWORD_RESET_RATE, increment=True
        )
        if usage is not None and usage["should_limit"]:
            raise _refuse(usage)
