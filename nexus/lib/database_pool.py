"""The connection pool of a server process, sized to what PostgreSQL allows.

PostgreSQL refuses connections past `max_connections`; `superuser_reserved_connections` (and,
from PostgreSQL 16, `reserved_connections`) of them are for administrators. A server asks once,
at start, and lowers its pool (DATABASE_POOL_MAX_SIZE, 20 by default) to its share:

    (max_connections - reserved - DATABASE_RESERVED_CONNECTIONS) // SERVER_PROCESSES

so that SERVER_PROCESSES processes together never ask for more connections than there are,
and the database threads of each (nexus.lib.db_threads) match its pool. Behind PgBouncer the
server's limit is not what clients see: set DATABASE_POOL_FIT=false and size the pools to the
bouncer's `max_client_conn` instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2


@dataclass(frozen=True)
class ServerLimits:
    max_connections: int
    reserved: int


def pool_share(limits: ServerLimits, *, processes: int, kept: int) -> int:
    """The connections one of `processes` processes may hold, at least one."""
    return max(1, (limits.max_connections - limits.reserved - kept) // processes)


def server_limits(params: dict[str, Any]) -> ServerLimits:
    with psycopg.connect(**{**params, "connect_timeout": CONNECT_TIMEOUT}) as connection:
        rows = connection.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
        ).fetchall()
    values = {name: int(setting) for name, setting in rows}
    return ServerLimits(
        max_connections=values["max_connections"],
        reserved=values.get("superuser_reserved_connections", 0) + values.get("reserved_connections", 0),
    )


def pool_fit(alias: str = "default") -> int | None:
    """Lowers the alias's pool to its share of the server; the size in force, or None when
    there is no PostgreSQL pool. A server that cannot be asked keeps the configured size."""
    pool = settings.DATABASES[alias].get("OPTIONS", {}).get("pool")
    if not isinstance(pool, dict):
        return None
    if not settings.DATABASE_POOL_FIT:
        return int(pool["max_size"])
    try:
        limits = server_limits(connections[alias].get_connection_params())
    except psycopg.Error as exc:
        logger.warning(
            "Could not read PostgreSQL's connection limit; the pool keeps %s: %s", pool["max_size"], exc
        )
        return int(pool["max_size"])
    share = pool_share(
        limits, processes=settings.SERVER_PROCESSES, kept=settings.DATABASE_RESERVED_CONNECTIONS
    )
    if share < pool["max_size"]:
        logger.warning(
            "The database pool is %s connections, not %s: PostgreSQL allows %s (%s reserved, %s kept "
            "for other clients) for %s server process(es). Raise max_connections, or put PgBouncer "
            "in front (DATABASE_POOL_FIT=false).",
            share,
            pool["max_size"],
            limits.max_connections,
            limits.reserved,
            settings.DATABASE_RESERVED_CONNECTIONS,
            settings.SERVER_PROCESSES,
        )
        pool["max_size"] = share
        pool["min_size"] = min(pool["min_size"], share)
    return int(pool["max_size"])
