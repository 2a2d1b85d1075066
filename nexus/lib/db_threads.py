"""Database work off the event loop: one bounded set of threads per process, and a queue on
the loop in front of it while every connection is busy.

Django's database API is synchronous, so an async view or a turn does its database work in a
thread. Here every such call runs in one thread pool per process with as many threads as the
connection pool has connections (`db_pool_size`), so a thread never waits for a connection and
the pool's own timeout is not what a busy server meets (nexus.lib.database_health).

AI calls (chats.answering, the WebSocket) wait to prepare in a `db_queue`: on the event loop,
holding no thread, in arrival order, with room kept for the finishes of turns already running
(their replies must be saved before new ones start). Past DATABASE_QUEUE_MAX waiting calls, or
after DATABASE_QUEUE_TIMEOUT seconds in line, a call gets 503 `busy` with Retry-After: the
database is up and the server is full, which a client should retry soon.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

from nexus.lib.errors import ApiError

P = ParamSpec("P")
R = TypeVar("R")

_executor: ThreadPoolExecutor | None = None


def db_pool_size() -> int:
    """Connections per process: the PostgreSQL pool's size (fitted to the server at start,
    nexus.lib.database_pool), or DATABASE_POOL_MAX_SIZE on SQLite."""
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    return int(pool["max_size"]) if isinstance(pool, dict) else int(settings.DATABASE_POOL_MAX_SIZE)


def _threads() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=db_pool_size(), thread_name_prefix="nexus-db")
    return _executor


def in_thread(function: Callable[P, R]) -> Callable[P, Any]:
    """`function` as a coroutine run in a database thread, its connection given back to the
    pool after (a thread of the pool outlives the request that used it)."""

    def with_fresh_connection(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with_fresh_connection.__qualname__ = f"in_thread({getattr(function, '__qualname__', 'call')})"
    return sync_to_async(with_fresh_connection, thread_sensitive=False, executor=_threads())


class Busy(ApiError):
    """503 `busy`: every database connection of this process stayed in use too long."""

    status_code = 503
    default_code = "busy"
    default_detail = "Nexus is busy right now. Try again in a moment."


class _Queue:
    """The calls of one event loop waiting for a database thread to prepare in."""

    def __init__(self, places: int) -> None:
        self.places = asyncio.Semaphore(places)
        self.waiting = 0

    @contextlib.asynccontextmanager
    async def place(self) -> AsyncIterator[None]:
        if self.places.locked() and self.waiting >= settings.DATABASE_QUEUE_MAX:
            raise Busy(retry_after=1)
        self.waiting += 1
        try:
            async with asyncio.timeout(settings.DATABASE_QUEUE_TIMEOUT):
                await self.places.acquire()
        except TimeoutError:
            raise Busy(retry_after=1) from None
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self.places.release()


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = weakref.WeakKeyDictionary()


def db_queue() -> contextlib.AbstractAsyncContextManager[None]:
    """A place to prepare an AI call in; raises Busy when none comes in time (see above).

    A quarter of the threads (at least one) is kept for the finishes, which never queue here."""
    loop = asyncio.get_running_loop()
    queue = _queues.get(loop)
    if queue is None:
        size = db_pool_size()
        queue = _queues[loop] = _Queue(max(1, size - max(1, size // 4)))
    return queue.place()
