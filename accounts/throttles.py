"""Throttles of the endpoints that take credentials: exact, atomic, keyed by address.

Each attempt takes a place in sliding-window counters in one atomic step (a Lua script over
Redis sorted sets; without Redis, the same under a lock in this process): either every
counter has room and the attempt is counted in all of them, or none is touched and the
attempt is refused with 429 and Retry-After. So N simultaneous attempts over any number of
processes get exactly the limit through, never more.

Login (the API's /auth/login and the console's /admin/login/ alike, on the same counters):
a place is taken before the password is checked and given back when it was right (or never
checked: 503 busy), so what stays counted are failures. The counters are
  - per client address and account: LOGIN_FAILURES_PER_ACCOUNT (5) per LOGIN_FAILURE_WINDOW,
  - per client address, any account: LOGIN_FAILURES_PER_ADDRESS (20), a cap for sprays.
There is no counter per account alone: with one, anyone could lock any user out by failing
on purpose; here a victim's own address keeps its own count.

Password reset: per address and per email (5 an hour), so nobody floods an inbox; a
refused reset only delays a mail. Registration: per address, the runtime setting
`registrations_per_hour` (0: no limit).

The client address is nexus.lib.client_address's (TRUSTED_PROXY_COUNT), never a header the
client chose. When the counters cannot be reached these fail closed (503).
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request

from accounts.errors import ServiceUnavailable, TooManyAttempts
from nexus.lib import runtime
from nexus.lib.client_address import client_address

logger = logging.getLogger(__name__)

PASSWORD_RESETS_PER_HOUR = 5
HOUR = 3600.0
KEY_PREFIX = "nexus:throttle:"

# KEYS: the counters (sorted sets of attempt ids scored by time in ms).
# ARGV: now, the attempt's id, then a limit and a window (ms) per key.
# Returns 0 when the attempt was counted everywhere, else the ms until the fullest frees.
_TAKE = """
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local left = tonumber(oldest[2]) + window - now
    if left > wait then wait = left end
  end
end
if wait > 0 then return math.ceil(wait) end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]))
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Counter:
    key: str
    limit: int
    window: float  # seconds


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt counted in `counters`, under its own id (to give its place back)."""

    counters: tuple[Counter, ...]
    member: str


class _MemoryCounters:
    """The Lua script's rule in one process, for a Nexus run without Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[str, dict[str, float]] = {}

    def take(self, counters: tuple[Counter, ...], member: str, now: float) -> float:
        with self._lock:
            wait = 0.0
            for counter in counters:
                entries = self._sets.setdefault(counter.key, {})
                for stale in [name for name, at in entries.items() if at <= now - counter.window]:
                    del entries[stale]
                if len(entries) >= counter.limit:
                    wait = max(wait, min(entries.values()) + counter.window - now)
            if wait > 0:
                return wait
            for counter in counters:
                self._sets[counter.key][member] = now
            return 0.0

    def give_back(self, attempt: Attempt) -> None:
        with self._lock:
            for counter in attempt.counters:
                self._sets.get(counter.key, {}).pop(attempt.member, None)


_memory = _MemoryCounters()
_script: Any = None


def _redis() -> Any:
    """The Redis client of the default cache, or None when the cache is not Redis."""
    if "django_redis" not in settings.CACHES["default"]["BACKEND"]:
        return None
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def _take(counters: tuple[Counter, ...]) -> Attempt:
    attempt = Attempt(counters=counters, member=secrets.token_hex(8))
    now = time.time()
    try:
        client = _redis()
        if client is None:
            wait = _memory.take(counters, attempt.member, now)
        else:
            global _script
            if _script is None:
                _script = client.register_script(_TAKE)
            arguments: list[Any] = [int(now * 1000), attempt.member]
            for counter in counters:
                arguments += [counter.limit, int(counter.window * 1000)]
            wait = (
                int(_script(keys=[counter.key for counter in counters], args=arguments, client=client)) / 1000
            )
    except Exception as exc:  # any failure of Redis: the counters cannot be trusted
        logger.warning("A throttle could not count (Redis unreachable?): %s", type(exc).__name__)
        raise ServiceUnavailable("This cannot be done right now; try again shortly.") from exc
    if wait > 0:
        raise TooManyAttempts(wait=max(1, math.ceil(wait)))
    return attempt


def _give_back(attempt: Attempt) -> None:
    """Takes the attempt out of its counters (it was no failure). Best effort: a failure here
    leaves one attempt too many counted, which the window forgets."""
    try:
        client = _redis()
        if client is None:
            _memory.give_back(attempt)
            return
        pipeline = client.pipeline(transaction=False)
        for counter in attempt.counters:
            pipeline.zrem(counter.key, attempt.member)
        pipeline.execute()
    except Exception as exc:
        logger.warning("A throttle could not give a place back: %s", type(exc).__name__)


def _key(kind: str, *parts: str) -> str:
    # Hashed: an email or an address of any length makes a short key, and Redis holds no emails.
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    return f"{KEY_PREFIX}{kind}:{digest}"


def _address(request: HttpRequest | Request) -> str:
    # No address (a unix socket, no trusted proxy header): all such clients share one count.
    return client_address(request) or "unknown"


# --- Login ----------------------------------------------------------------------------------


def login_attempt_begin(*, request: HttpRequest | Request, email: str) -> Attempt:
    """Counts a login attempt before its password is checked; 429 once the address has
    failed too often, for this account or overall."""
    address = _address(request)
    window = float(settings.LOGIN_FAILURE_WINDOW)
    return _take(
        (
            Counter(_key("login:account", address, email), int(settings.LOGIN_FAILURES_PER_ACCOUNT), window),
            Counter(_key("login:address", address), int(settings.LOGIN_FAILURES_PER_ADDRESS), window),
        )
    )


def login_attempt_succeeded(attempt: Attempt) -> None:
    """The password was right: the attempt was no failure."""
    _give_back(attempt)


def login_attempt_unchecked(attempt: Attempt) -> None:
    """The password was never checked (busy, an error): the attempt does not count."""
    _give_back(attempt)


# --- Password reset and registration --------------------------------------------------------


def password_reset_throttle(*, request: HttpRequest | Request, email: str) -> None:
    """Counts this reset request; refuses it past the limit of its address or its email."""
    _take(
        (
            Counter(_key("reset:address", _address(request)), PASSWORD_RESETS_PER_HOUR, HOUR),
            Counter(_key("reset:email", email), PASSWORD_RESETS_PER_HOUR, HOUR),
        )
    )


def registration_throttle(*, request: HttpRequest | Request) -> None:
    """Counts this registration attempt of its address; 429 past `registrations_per_hour`."""
    limit = runtime.registrations_per_hour()
    if limit > 0:
        _take((Counter(_key("register:address", _address(request)), limit, HOUR),))
