"""The journal of turns: what a turn still owes PostgreSQL, kept where a crash or an outage
cannot take it.

Every turn has one entry, a field of the Redis hash JOURNAL named after its stream key,
from its launch until its outcome is committed:

- `running` (written with the turn's first alive mark, see chats.runner): who pays (the
  admission), which model and how many input tokens, so that a turn whose process died
  can still be charged for what it generated;
- `finished` (written before the client is told `done` or `error`): the whole outcome.

The process that finishes a turn also keeps the entry in memory until PostgreSQL has it:
with Redis down too, that copy is retried alone. Entries hold plain JSON, never ORM
objects or provider secrets; chats.recovery applies them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django_redis import get_redis_connection

from billing.services import Admission
from llm.types import ModelTarget, ProviderConfig

logger = logging.getLogger(__name__)

JOURNAL = "nexus:journal"
RUNNING, FINISHED = "running", "finished"
# Seconds between tries of an outcome PostgreSQL refused: doubling, up to the last.
RETRY_FIRST, RETRY_MOST = 0.5, 5.0

Entry = dict[str, Any]


def admission_dump(admission: Admission) -> dict[str, Any]:
    return {
        "id": str(admission.id),
        "user_id": admission.user_id,
        "api_key_id": admission.api_key_id,
        "month": admission.month.isoformat(),
        "amount": str(admission.amount),
        "tokens": admission.tokens,
        "model_id": admission.model_id,
        "created_at": admission.created_at.isoformat(),
    }


def admission_load(data: dict[str, Any]) -> Admission:
    return Admission(
        id=uuid.UUID(data["id"]),
        user_id=data["user_id"],
        api_key_id=data["api_key_id"],
        month=date.fromisoformat(data["month"]),
        amount=Decimal(data["amount"]),
        tokens=data["tokens"],
        model_id=data["model_id"],
        created_at=datetime.fromisoformat(data["created_at"]),
    )


def target_dump(target: ModelTarget) -> dict[str, Any]:
    """What the ledger needs of the model that served: names and prices, no credentials."""
    return {
        "id": target.id,
        "name": target.name,
        "provider_id": target.provider.id,
        "provider": target.provider.name,
        "kind": target.provider.kind,
        "input_price": str(target.input_price_per_million),
        "output_price": str(target.output_price_per_million),
    }


def target_load(data: dict[str, Any]) -> ModelTarget:
    """A target good for pricing and recording only: it cannot call the provider."""
    provider = ProviderConfig(
        id=data["provider_id"], name=data["provider"], kind=data["kind"], base_url="", api_key=""
    )
    return ModelTarget(
        id=data["id"],
        name=data["name"],
        upstream_name=data["name"],
        provider=provider,
        context_window=0,
        max_output_tokens=0,
        input_price_per_million=Decimal(data["input_price"]),
        output_price_per_million=Decimal(data["output_price"]),
    )


def encode(entry: Entry) -> str:
    return json.dumps(entry, separators=(",", ":"))


# --- the outcomes this process still owes ----------------------------------------------------


@dataclass
class _Pending:
    entry: Entry
    in_redis: bool = False
    next_try: float = 0.0
    delay: float = RETRY_FIRST


_pending: dict[str, _Pending] = {}
_lock = threading.Lock()


def record(entry: Entry) -> None:
    """Journals a finished turn's outcome: in memory, and in Redis when it answers."""
    pending = _Pending(entry=entry, next_try=time.monotonic())
    with _lock:
        _pending[entry["key"]] = pending
    pending.in_redis = _redis_write(entry)


def committed(key: str) -> None:
    """PostgreSQL has the outcome: the journal forgets it (a leftover Redis copy is harmless,
    as applying an entry twice changes nothing)."""
    with _lock:
        _pending.pop(key, None)
    forget(key)


def failed_again(key: str) -> None:
    """The save failed: try again later, each time a little later."""
    with _lock:
        pending = _pending.get(key)
        if pending is not None:
            pending.next_try = time.monotonic() + pending.delay
            pending.delay = min(pending.delay * 2, RETRY_MOST)


def pending_keys() -> list[str]:
    """The turns whose outcome this process still has to save: they are still its own."""
    with _lock:
        return list(_pending)


def due() -> list[Entry]:
    """The owed outcomes whose next try has come; copies them to Redis if they were not."""
    now = time.monotonic()
    with _lock:
        ready = [pending for pending in _pending.values() if pending.next_try <= now]
    for pending in ready:
        if not pending.in_redis:
            pending.in_redis = _redis_write(pending.entry)
    return [pending.entry for pending in ready]


def next_try_in() -> float | None:
    with _lock:
        tries = [pending.next_try for pending in _pending.values()]
    return max(0.0, min(tries) - time.monotonic()) if tries else None


# --- the Redis copy ----------------------------------------------------------------------------


def _redis_write(entry: Entry) -> bool:
    if not settings.REDIS_URL:
        return False
    try:
        get_redis_connection("default").hset(JOURNAL, entry["key"], encode(entry))
    except Exception:  # kept in memory: retried, and copied here once Redis is back
        logger.warning("Could not journal the outcome of %s in Redis", entry["key"], exc_info=True)
        return False
    return True


def forget(key: str) -> None:
    if not settings.REDIS_URL:
        return
    try:
        get_redis_connection("default").hdel(JOURNAL, key)
    except Exception:
        logger.warning("Could not remove %s from the journal", key, exc_info=True)


def entries() -> list[Entry]:
    """Every journaled turn, from Redis (raises RedisError when it cannot be read)."""
    if not settings.REDIS_URL:
        return []
    found = []
    for key, raw in get_redis_connection("default").hgetall(JOURNAL).items():
        try:
            found.append(json.loads(raw))
        except ValueError:
            logger.error("Dropping an unreadable journal entry %r", key)
            get_redis_connection("default").hdel(JOURNAL, key)
    return found
