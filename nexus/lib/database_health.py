"""Fail fast while PostgreSQL is known to be down, instead of waiting out the pool's timeout.

Without this, every request that needs the database during an outage waits the whole
DATABASE_POOL_TIMEOUT (10 s) in psycopg_pool's `getconn` before its 503, and holds a worker
thread while it waits. Here, one breaker per database alias sits where Django opens a
connection (`DatabaseWrapper.get_new_connection`, which with the pool is the checkout):

- closed (normal): connections open as usual. When opening one fails with an OperationalError
  (the pool timed out, or the connection was refused), a probe is started: a pool timeout
  alone may mean a busy pool, so only a failed probe declares PostgreSQL down.
- open (PostgreSQL down): opening a connection raises OperationalError at once, which the
  error middleware answers with 503 `service_unavailable`. One probe thread per process and
  alias connects every DATABASE_PROBE_INTERVAL seconds, outside the pool.
- when a probe connects again, the pool is replaced by a fresh one, then the breaker closes.
  The old pool's reconnection attempts have backed off by then (1, 2, 4, 8 s ...), so after a
  long outage it would make the next requests wait for its next attempt; a fresh pool
  connects at once.

Requests that open no connection (static files, /health's cache check) never meet it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from psycopg_pool import PoolTimeout

logger = logging.getLogger(__name__)

# libpq's smallest connect timeout: a probe of an unreachable host gives up after this long.
PROBE_CONNECT_TIMEOUT = 2


class DatabaseUnavailable(psycopg.OperationalError):
    """Raised instead of opening a connection while PostgreSQL is known to be down.

    A psycopg OperationalError, so Django wraps it in its own and callers handle it as any
    other outage (the error middleware's 503, the finish's retries).
    """


class DatabaseBreaker:
    """The known state of one database, and the one probe that updates it."""

    def __init__(self, *, alias: str, probe: Callable[[], None], on_recovery: Callable[[], None]) -> None:
        self.alias = alias
        self._probe = probe
        self._on_recovery = on_recovery
        self._lock = threading.Lock()
        self._probing = False
        self.down = False

    def raise_if_down(self) -> None:
        if self.down:
            raise DatabaseUnavailable(
                f"PostgreSQL ({self.alias}) is unavailable; retrying it in the background"
            )

    def suspect(self) -> None:
        """Opening a connection failed: start a probe unless one is under way already."""
        with self._lock:
            if self._probing:
                return
            self._probing = True
        threading.Thread(
            target=self._probe_until_up, name=f"database-probe-{self.alias}", daemon=True
        ).start()

    def _probe_until_up(self) -> None:
        try:
            while True:
                started = time.monotonic()
                try:
                    self._probe()
                except psycopg.Error as exc:
                    if not self.down:
                        logger.warning(
                            "PostgreSQL (%s) is down, failing fast until it is back: %s", self.alias, exc
                        )
                    self.down = True
                else:
                    if self.down:
                        self._on_recovery()
                        logger.warning("PostgreSQL (%s) is back", self.alias)
                    self.down = False
                    return
                time.sleep(max(0.0, settings.DATABASE_PROBE_INTERVAL - (time.monotonic() - started)))
        finally:
            with self._lock:
                self._probing = False


_breakers: dict[str, DatabaseBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(wrapper: Any) -> DatabaseBreaker:
    """The breaker of a Django PostgreSQL `DatabaseWrapper`'s alias, made on first use."""
    with _breakers_lock:
        breaker = _breakers.get(wrapper.alias)
        if breaker is None:
            breaker = DatabaseBreaker(
                alias=wrapper.alias,
                probe=functools.partial(_connect_once, wrapper),
                on_recovery=functools.partial(_replace_pool, type(wrapper), wrapper.alias),
            )
            _breakers[wrapper.alias] = breaker
        return breaker


def pool_saturated(exc: BaseException) -> bool:
    """True when `exc` (or what Django wrapped) is the pool's timeout while PostgreSQL is up:
    every connection was busy, which is load to shed with a `busy` 503, not an outage."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, PoolTimeout):
        cause = cause.__cause__
    return cause is not None and not any(breaker.down for breaker in _breakers.values())


def _connect_once(wrapper: Any) -> None:
    params = wrapper.get_connection_params()
    params["connect_timeout"] = PROBE_CONNECT_TIMEOUT
    with psycopg.connect(**params) as connection:
        connection.execute("SELECT 1")


def _replace_pool(wrapper_class: Any, alias: str) -> None:
    """Drops the alias's pool, so the next checkout builds and opens a new one."""
    pool = wrapper_class._connection_pools.pop(alias, None)
    if pool is not None:
        # Connections still checked out of it are closed when they are returned to it.
        pool.close(timeout=1)


def install_database_breaker() -> None:
    """Puts the breaker around Django's PostgreSQL `get_new_connection`, once per process."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    original = DatabaseWrapper.get_new_connection
    if getattr(original, "nexus_breaker", False):
        return

    @functools.wraps(original)
    def get_new_connection(self: Any, conn_params: dict[str, Any]) -> Any:
        breaker = breaker_for(self)
        breaker.raise_if_down()
        try:
            return original(self, conn_params)
        except psycopg.OperationalError:
            breaker.suspect()
            raise

    get_new_connection.nexus_breaker = True  # type: ignore[attr-defined]
    DatabaseWrapper.get_new_connection = get_new_connection  # type: ignore[method-assign]
