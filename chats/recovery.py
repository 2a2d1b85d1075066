"""Replies that outlive their stream: resuming a reader, saving journaled outcomes, and
repairing turns whose process died.

A turn whose alive mark (chats.runner) has lapsed belongs to a dead process: any process
repairs it at once from its journal entry (chats.journal), at start (`repair_streams`) and
every third of STREAM_ALIVE_SECONDS (the sweeper thread of each server process). A
`finished` entry is saved as it was; a `running` one becomes `failed` (`interrupted`) with
the text its Redis buffer holds, charged for those tokens, its reservation settled. Every
step is a conditional write, so processes racing to repair one turn do it once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.signals import request_started
from django.db import IntegrityError, close_old_connections, connections, transaction
from django.db.models import Q
from django.utils import timezone
from django_redis import get_redis_connection
from redis.exceptions import ResponseError

from billing.services import usage_record_create
from chats import journal, runner
from chats.models import Conversation, Message, MessageStatus
from chats.streams import (
    StreamEvent,
    buffer_key,
    decode_entry,
    encode_entry,
    hub,
    interrupted_event,
    stream_key_for,
)
from llm.tokens import estimate_tokens

logger = logging.getLogger(__name__)

# No turn runs longer than this (providers' total timeouts are shorter): a `streaming`
# message this old is dead whatever Redis says.
LONGEST_TURN = timedelta(hours=1)
INTERRUPTED = "interrupted"


def _snapshot(message: Message, after: int) -> list[StreamEvent]:
    """The saved reply as events, for a stream whose buffer is gone.

    A reader from the start gets `start`, the text as one `delta`, and the end; a reader
    who had part of the stream gets the end with the whole text in `content`.
    """
    usage = {"input_tokens": message.input_tokens, "output_tokens": message.output_tokens}
    if message.status in (MessageStatus.FAILED, MessageStatus.STREAMING):
        code = message.error_code or INTERRUPTED
        end_name = "error"
        end_data: dict[str, object] = {
            "message_id": message.pk,
            "error": {"code": code, "message": "The reply did not finish."},
            "usage": usage,
        }
    else:
        end_name = "done"
        reason = "stopped" if message.status == MessageStatus.STOPPED else "stop"
        end_data = {"message_id": message.pk, "finish_reason": reason, "usage": usage}
    if after > 0:
        return [StreamEvent(after + 1, end_name, {**end_data, "content": message.content})]
    events = [
        StreamEvent(
            1,
            "start",
            {"conversation_id": message.conversation_id, "message_id": message.pk, "model": message.model},
        )
    ]
    if message.content:
        events.append(StreamEvent(2, "delta", {"content": message.content}))
    events.append(StreamEvent(len(events) + 1, end_name, end_data))
    return events


async def message_events(message: Message, after: int = 0) -> AsyncIterator[list[StreamEvent]]:
    """The events of a reply after `after`, in batches: live from its buffer while it has
    one, else from what was saved."""
    key = stream_key_for(message.pk)
    if await hub.buffered(key):
        async for batch in hub.subscribe_batches(key, after):
            yield batch
        return
    yield _snapshot(message, after)


def _close_buffer(key: str, message_id: int) -> str | None:
    """Ends a dead turn's Redis buffer with an `error` event, so that its readers stop
    waiting; returns the text of its deltas (None without a buffer)."""
    if not settings.REDIS_URL:
        return None
    redis = get_redis_connection("default")
    events = [item for _, fields in redis.xrange(buffer_key(key)) for item in decode_entry(fields)]
    if not events:
        return None
    if not events[-1].terminal:
        end = interrupted_event(events[-1].id + 1, message_id)
        with contextlib.suppress(ResponseError):  # another process wrote the end first
            redis.xadd(buffer_key(key), encode_entry([end]), id=f"{end.id}-0")
    return "".join(item.data.get("content", "") for item in events if item.event == "delta")


# --- saving an outcome ---------------------------------------------------------------------


def outcome_save(entry: journal.Entry) -> None:
    """Saves a turn's outcome: the reply, its usage record and the settled reservation, in
    one transaction. Applying the same entry again changes nothing: the reply is written
    only while it is `streaming` (or was repaired as `interrupted` before the real outcome
    landed), and the ledger takes one record per admission."""
    admission = journal.admission_load(entry["admission"])
    with transaction.atomic():
        if entry["message_id"] is not None:
            Message.objects.filter(
                Q(status=MessageStatus.STREAMING) | Q(status=MessageStatus.FAILED, error_code=INTERRUPTED),
                pk=entry["message_id"],
            ).update(
                content=entry["text"],
                reasoning=entry.get("reasoning", ""),
                tool_calls=entry.get("tool_calls", []),
                status=entry["status"],
                model=entry["target"]["name"],
                input_tokens=entry["input_tokens"],
                output_tokens=entry["output_tokens"],
                error_code=entry["error_code"],
            )
        usage_record_create(
            admission=admission,
            target=journal.target_load(entry["target"]),
            input_tokens=entry["input_tokens"],
            output_tokens=entry["output_tokens"],
            estimated=entry["estimated"],
            cached=entry["cached"],
            outcome=entry["status"],
            latency_ms=entry["latency_ms"],
            ttft_ms=entry["ttft_ms"],
            charged=entry.get("charged", not entry["cached"]),
            kind=entry.get("kind", "chat"),
        )
        if entry["conversation_id"] is not None:
            Conversation.objects.filter(pk=entry["conversation_id"]).update(updated_at=timezone.now())


def _interrupted(entry: journal.Entry) -> journal.Entry:
    """A `running` entry whose process died, as the outcome it had reached: its buffered
    text, failed `interrupted`, its output tokens estimated from that text."""
    text = (_close_buffer(entry["key"], entry["message_id"]) if entry["message_id"] else None) or ""
    return {
        **entry,
        "phase": journal.FINISHED,
        "text": text,
        "status": MessageStatus.FAILED,
        "error_code": INTERRUPTED,
        "output_tokens": estimate_tokens(text) if text else 0,
        "estimated": True,
        "cached": False,
        "latency_ms": max(0, int((time.time() - entry["started_at"]) * 1000)),
        "ttft_ms": None,
    }


def _save_or_drop(entry: journal.Entry) -> bool:
    """Saves a journaled outcome and forgets it; False if PostgreSQL cannot take it now."""
    try:
        outcome_save(entry)
    except IntegrityError:  # its user is gone: it can never be saved
        logger.exception("Dropping the journaled outcome of %s, which cannot be saved", entry["key"])
    except Exception:
        logger.warning("Could not save the journaled outcome of %s yet", entry["key"], exc_info=True)
        return False
    journal.forget(entry["key"])
    return True


# --- repairing turns whose process died ------------------------------------------------------


def _alive_marks_trusted() -> bool:
    """A Redis younger than an alive mark's lifetime may have lost the marks of live turns."""
    uptime = get_redis_connection("default").info("server").get("uptime_in_seconds", 0)
    return float(uptime) >= settings.STREAM_ALIVE_SECONDS


def journal_repair(entries: list[journal.Entry], *, dry_run: bool = False) -> tuple[list[int], list[str]]:
    """Applies the journal entries of turns no process runs: `finished` ones are saved as they
    were, `running` ones as `interrupted`. Returns the replies marked interrupted and the
    keys of the outcomes saved."""
    mine = set(journal.pending_keys())
    alive = runner.alive_elsewhere([entry["key"] for entry in entries])
    oldest = time.time() - LONGEST_TURN.total_seconds()
    interrupted: list[int] = []
    saved: list[str] = []
    for entry in entries:
        key = entry["key"]
        if runner.running_here(key) or key in mine:
            continue
        if key in alive and not (entry["phase"] == journal.RUNNING and entry["started_at"] < oldest):
            continue
        if entry["phase"] == journal.FINISHED:
            if dry_run or _save_or_drop(entry):
                saved.append(key)
            continue
        if entry["message_id"] is not None:
            interrupted.append(entry["message_id"])
        if not dry_run:
            _save_or_drop(_interrupted(entry))
            logger.warning("Turn %s lost its process; saved as interrupted", key)
    return interrupted, saved


@dataclass(frozen=True, slots=True)
class Repair:
    interrupted: list[int] = field(default_factory=list)  # replies marked failed `interrupted`
    saved: list[str] = field(default_factory=list)  # journaled outcomes saved for dead processes


def streams_repair(*, dry_run: bool = False, message_ids: list[int] | None = None) -> list[int]:
    """Marks `failed` the replies still `streaming` whose turn no process runs; returns their ids.

    `message_ids` limits it to those replies, known dead: no age or alive mark is asked for.
    """
    streaming = Message.objects.filter(status=MessageStatus.STREAMING)
    if message_ids is not None:
        dead = list(streaming.filter(pk__in=message_ids).values_list("pk", flat=True))
        return dead if dry_run else _mark_failed(dead)
    return turns_repair(dry_run=dry_run).interrupted


def turns_repair(*, dry_run: bool = False) -> Repair:
    """Repairs every turn no live process owns: from its journal entry when it has one
    (saved, charged, its reservation settled), else by its alive mark and age (its
    reservation then left to `release_stale_reservations`)."""
    if settings.REDIS_URL and not _alive_marks_trusted():
        return Repair()
    entries = journal.entries()
    interrupted, saved = journal_repair(entries, dry_run=dry_run)
    journaled = {entry["key"] for entry in entries} | set(journal.pending_keys())
    candidates = list(Message.objects.filter(status=MessageStatus.STREAMING).values_list("pk", "created_at"))
    keys = [stream_key_for(message_id) for message_id, _ in candidates]
    alive = runner.alive_elsewhere(keys)
    now = timezone.now()
    # A reply just prepared may not be marked alive yet: it is given one mark's lifetime.
    too_old, too_young = now - LONGEST_TURN, now - timedelta(seconds=settings.STREAM_ALIVE_SECONDS)
    dead = [
        message_id
        for (message_id, created_at), key in zip(candidates, keys, strict=True)
        if key not in journaled
        and not runner.running_here(key)
        and created_at < too_young
        and (key not in alive or created_at < too_old)
    ]
    return Repair(interrupted=interrupted + (dead if dry_run else _mark_failed(dead)), saved=saved)


def _mark_failed(dead: list[int]) -> list[int]:
    for message_id in dead:
        text = _close_buffer(stream_key_for(message_id), message_id)
        with transaction.atomic():
            changes: dict[str, object] = {"status": MessageStatus.FAILED, "error_code": INTERRUPTED}
            if text:
                changes["content"] = text
            Message.objects.filter(pk=message_id, status=MessageStatus.STREAMING).update(**changes)
        logger.warning("Reply %s was left streaming by a stopped server; marked failed", message_id)
    return dead


# --- the sweeper of each server process ------------------------------------------------------

_sweeper: threading.Thread | None = None
_sweeper_lock = threading.Lock()
_sweeper_wake = threading.Event()
_serving = False


def sweeper_ensure(*, serving: bool = False) -> None:
    """Starts this process's sweeper thread once: it retries the outcomes this process owes
    and, in a server process (`serving`), repairs the turns of dead ones."""
    global _sweeper, _serving
    with _sweeper_lock:
        if serving and not _serving:
            _serving = True
            _sweeper_wake.set()
        if _sweeper is None or not _sweeper.is_alive():
            _sweeper = threading.Thread(target=_sweep_forever, name="nexus-turn-sweeper", daemon=True)
            _sweeper.start()
        else:
            _sweeper_wake.set()


def _sweep_forever() -> None:
    next_sweep = 0.0
    while True:
        try:
            close_old_connections()
            for entry in journal.due():
                try:
                    outcome_save(entry)
                except IntegrityError:
                    logger.exception("Dropping the outcome of %s, which cannot be saved", entry["key"])
                    journal.committed(entry["key"])
                except Exception as exc:
                    logger.warning("Could not save the outcome of %s yet: %s", entry["key"], exc)
                    journal.failed_again(entry["key"])
                else:
                    logger.warning("Saved the outcome of %s, late", entry["key"])
                    journal.committed(entry["key"])
            if _serving and settings.REDIS_URL and time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + settings.STREAM_ALIVE_SECONDS / 3
                turns_repair()
        except Exception:
            logger.warning("The turn sweep failed; trying again", exc_info=True)
        finally:
            connections.close_all()
        waits = [next_sweep - time.monotonic()] if _serving and settings.REDIS_URL else []
        retry = journal.next_try_in()
        if retry is not None:
            waits.append(retry)
        _sweeper_wake.wait(timeout=max(0.05, min(waits)) if waits else None)
        _sweeper_wake.clear()


def _start_with_server(sender: Any, scope: Any = None, **kwargs: Any) -> None:
    """The first request a server process serves starts its sweeper. Only ASGI requests
    carry a scope; a test process must not repair the turns of the servers it tests."""
    if _serving or scope is None or not settings.REDIS_URL or _from_test_client(scope):
        return
    sweeper_ensure(serving=True)


def _from_test_client(scope: dict[str, Any]) -> bool:
    """Django's AsyncClient names its server "testserver" in the scope, or (for requests
    with a method) 127.0.0.1 with a `Host: testserver` header."""
    server = (scope.get("server") or ("testserver",))[0]
    host = dict(scope.get("headers") or ()).get(b"host", b"").split(b":")[0]
    return server == "testserver" or host == b"testserver"


request_started.connect(_start_with_server, dispatch_uid="nexus-turn-sweeper")
