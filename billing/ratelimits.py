"""AI calls per minute, counted by django-ratelimit in the shared cache (Redis).

django-ratelimit adds the window's counter with SET NX and increments it with INCRBY, both
atomic in Redis, so every server process shares one count and a burst of simultaneous
calls is counted exactly. Its check is synchronous: async callers run admission in a
thread (sync_to_async) rather than on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_ratelimit.core import get_usage
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from billing.errors import RateLimited, RateLimitUnavailable

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Counted:
    """Whom a counter counts: `scope` names the counter, `ident` the user or the key."""

    scope: str
    ident: int


def _usage(subject: Counted, limit: int) -> dict[str, Any] | None:
    def key(group: str, request: object) -> str:
        return str(subject.ident)

    return get_usage(
        None,  # the key function names the caller; no request is needed
        group=f"billing.ai_calls.{subject.scope}",
        key=key,
        rate=(limit, WINDOW_SECONDS),
        increment=True,
    )


def ai_call_count(*, subject: Counted, limit: int) -> None:
    """Counts one call; raises RateLimited past `limit` calls in the window (0: no limit)."""
    if limit <= 0:
        return
    try:
        usage = _usage(subject, limit)
        if usage is not None and usage["limit"] == 0:
            # The window's key expired between django-ratelimit's add and its increment:
            # count again in the new window rather than refuse the call.
            usage = _usage(subject, limit)
    except (ConnectionInterrupted, RedisError) as exc:
        raise RateLimitUnavailable() from exc
    if usage is None:  # RATELIMIT_ENABLE = False
        return
    if usage["limit"] == 0:
        raise RateLimitUnavailable()
    if usage["should_limit"]:
        # The window still holds at its last second (time_left 0): it resets one second later.
        seconds = max(1, usage["time_left"] + 1)
        raise RateLimited(
            f"More than {limit} AI calls in a minute. Try again in {seconds} seconds.", retry_after=seconds
        )
