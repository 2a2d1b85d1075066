"""AI calls per minute: at most N in any 60 seconds, across every server process.

Each caller's calls of the last minute are a sorted set in Redis (member: the call, score:
its time in milliseconds). One Lua script drops what is older than the window, counts the
rest and adds the call only when the count is under the limit, all in one atomic step, so
simultaneous calls on any number of processes are counted exactly; a refusal says when the
oldest counted call leaves the window, to the second. A fixed clock window (django-ratelimit's
counters, used here before) let up to twice the limit through across a window's edge.

Without Redis (the embedded default, one process) the same log is kept in memory.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from billing.errors import RateLimited, RateLimitUnavailable

WINDOW_SECONDS = 60

# KEYS[1] the caller's log; ARGV: now (ms), window (ms), limit, member.
# Returns 0 when the call is counted, else the milliseconds until the oldest call leaves.
_COUNT_SCRIPT = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""

clock = time.time  # the tests' stand-in for time


@dataclass(frozen=True, slots=True)
class Counted:
    """Whom a counter counts: `scope` names the counter, `ident` the user or the key."""

    scope: str
    ident: int


def ai_call_count(*, subject: Counted, limit: int) -> None:
    """Counts one call; raises RateLimited past `limit` calls in any minute (0: no limit)."""
    if limit <= 0:
        return
    now_ms = int(clock() * 1000)
    key = f"nexus:ai-calls:{subject.scope}:{subject.ident}"
    wait_ms = _count_in_redis(key, now_ms, limit) if settings.REDIS_URL else _memory.count(key, now_ms, limit)
    if wait_ms:
        seconds = max(1, math.ceil(wait_ms / 1000))
        raise RateLimited(
            f"More than {limit} AI calls in a minute. Try again in {seconds} seconds.", retry_after=seconds
        )


def _count_in_redis(key: str, now_ms: int, limit: int) -> int:
    try:
        client = get_redis_connection("default")
        return int(client.eval(_COUNT_SCRIPT, 1, key, now_ms, WINDOW_SECONDS * 1000, limit, uuid.uuid4().hex))
    except RedisError as exc:
        raise RateLimitUnavailable() from exc


class _MemoryLog:
    """The same log in this process, for a Nexus run without Redis."""

    def __init__(self) -> None:
        self._calls: dict[str, deque[int]] = {}
        self._lock = threading.Lock()

    def count(self, key: str, now_ms: int, limit: int) -> int:
        window = WINDOW_SECONDS * 1000
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now_ms - window:
                calls.popleft()
            if len(calls) < limit:
                calls.append(now_ms)
                return 0
            return max(1, calls[0] + window - now_ms)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


_memory = _MemoryLog()
