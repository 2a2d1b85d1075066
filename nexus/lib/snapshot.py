"""The shared-cache keys every request reads, fetched in one round trip per request.

An AI call reads the runtime settings and the generation of each process cache
(nexus.lib.process_cache: routes, users, keys, quota rows) several times over, each a cache
round trip. `SnapshotMiddleware` gives each request an empty snapshot; the first read of any
registered key fills it with all of them in one MGET, and later reads of the request take
their values from it:

    snapshot.register(KEY)                 at import, for a key read on every request
    found, value = snapshot.read(KEY)      found: the request's snapshot has it (value may be None)
    snapshot.forget(KEY)                   this request changed it: read it afresh from now on

A snapshot lives at most SNAPSHOT_SECONDS after it was filled: work that outlives its request
(a turn streaming for minutes, a title written later) inherits the request's context, and
reads the cache itself once the snapshot is that old. Outside a request nothing changes.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache

SNAPSHOT_SECONDS = 1.0
_keys: list[str] = []


@dataclass
class Snapshot:
    values: dict[str, Any] = field(default_factory=dict)
    filled_at: float | None = None  # time.monotonic() of the MGET; None: not read yet
    failed: bool = False  # the cache did not answer: every read goes its own way
    forgotten: set[str] = field(default_factory=set)  # written by this request


_current: ContextVar[Snapshot | None] = ContextVar("nexus_cache_snapshot", default=None)


def register(key: str) -> None:
    """A key read on (nearly) every request: the snapshot fetches it with the others."""
    if key not in _keys:
        _keys.append(key)


def begin() -> Any:
    """A new, empty snapshot for the request starting; returns what `end` takes."""
    return _current.set(Snapshot())


def end(token: Any) -> None:
    _current.reset(token)


def read(key: str) -> tuple[bool, Any]:
    """(True, value) when the request's snapshot holds `key`, else (False, None): the key is
    not set, or not registered, or written by this request, or the snapshot is too old; the
    caller then reads the cache itself."""
    snapshot = _current.get()
    if snapshot is None or snapshot.failed or key not in _keys or key in snapshot.forgotten:
        return False, None
    if snapshot.filled_at is None:
        try:
            snapshot.values = cache.get_many(_keys)
        except Exception:  # the callers' own reads say so, and cope
            snapshot.failed = True
            return False, None
        snapshot.filled_at = time.monotonic()
    elif time.monotonic() - snapshot.filled_at > SNAPSHOT_SECONDS:
        return False, None
    value = snapshot.values.get(key)
    return value is not None, value


def forget(key: str) -> None:
    """This request wrote `key`: its later reads go to the cache."""
    snapshot = _current.get()
    if snapshot is not None:
        snapshot.forgotten.add(key)
