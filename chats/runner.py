"""The turns running in this server process, and how to stop one from any process.

A turn is an asyncio task of the process that accepted it, owned by no connection. To
stop it from another process, `stop` publishes its key on a Redis channel every process
listens to; the one running it cancels the task (closing the upstream connection).

Each process also keeps a short-lived "alive" key in Redis for each of its turns, and for
each finished turn whose outcome it has yet to save (chats.journal), so that any process
can tell a turn that is running elsewhere from one whose process died (chats.recovery).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Coroutine, Mapping
from typing import Any

from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from chats import journal
from chats.streams import alive_key, hub
from nexus.lib.errors import ApiError

logger = logging.getLogger(__name__)

# Pub/sub channels are shared by every database of a Redis server: name it after the URL.
STOP_CHANNEL = "nexus:turn-stop:" + hashlib.sha256(settings.REDIS_URL.encode()).hexdigest()[:12]

# The turns of this process, with the loop each runs on (a stop may come from a thread).
_running: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Task[None]]] = {}
_background: dict[asyncio.AbstractEventLoop, list[asyncio.Task[None]]] = {}


def launch(
    stream_key: str,
    run: Coroutine[Any, Any, None],
    *,
    resumable: bool = True,
    journal_entry: Mapping[str, Any] | None = None,
) -> None:
    """Runs `run` as a task of the running loop until it ends, whoever reads its stream.

    `journal_entry` (chats.journal, `running`) is written with the turn's first alive mark
    before `run` starts, so that a crash at any later point leaves what its repair needs.
    """
    hub.open(stream_key, mirrored=resumable)
    loop = asyncio.get_running_loop()
    if journal_entry is not None and settings.REDIS_URL:
        run = _journaled(stream_key, journal.encode(dict(journal_entry)), run)
    task = loop.create_task(run, name=stream_key)
    _running[stream_key] = (loop, task)
    task.add_done_callback(lambda _: _running.pop(stream_key, None))
    if settings.REDIS_URL:
        _ensure_background(loop)
        _wake_heartbeat(loop)


async def _journaled(stream_key: str, entry: str, run: Coroutine[Any, Any, None]) -> None:
    try:
        await _begin(stream_key, entry)
    except asyncio.CancelledError:
        # Stopped before it began: deliver the stop inside the run, which saves the reply.
        task = asyncio.current_task()
        if task is not None:
            task.cancel()
    await run


async def _begin(stream_key: str, entry: str) -> None:
    """The alive mark and the `running` entry in one MULTI: no process can see the entry
    of a live turn without its mark. HSETNX: a later `finished` entry is never overwritten."""
    client = hub.redis()
    if client is None:
        return
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(alive_key(stream_key), "1", px=int(settings.STREAM_ALIVE_SECONDS * 1000))
            pipe.hsetnx(journal.JOURNAL, stream_key, entry)
            await asyncio.wait_for(pipe.execute(), timeout=2)
    except asyncio.CancelledError:
        raise
    except Exception:  # the turn goes on; only its repair after a crash would lack the entry
        logger.warning("Could not journal the start of %s", stream_key, exc_info=True)


def running_here(stream_key: str) -> bool:
    return stream_key in _running


def stop(stream_key: str) -> bool:
    """Cancels the turn here if it runs here, else asks every process (sync; any thread).

    False when no process can be running it: not here, and no Redis to reach others.
    """
    running = _running.get(stream_key)
    if running is not None:
        loop, task = running
        loop.call_soon_threadsafe(task.cancel)
        return True
    if settings.REDIS_URL:
        try:
            get_redis_connection("default").publish(STOP_CHANNEL, stream_key)
        except RedisError as exc:  # the other processes cannot be told: say so, never a 500
            logger.warning("Could not ask the other processes to stop %s: %s", stream_key, exc)
            raise ApiError(
                "The reply cannot be stopped right now. Try again shortly.",
                code="service_unavailable",
                status_code=503,
            ) from exc
        return True
    return False


def alive_elsewhere(stream_keys: list[str]) -> set[str]:
    """The keys whose turns some process still reports as running."""
    if not stream_keys or not settings.REDIS_URL:
        return set()
    values = get_redis_connection("default").mget([alive_key(key) for key in stream_keys])
    return {key for key, value in zip(stream_keys, values, strict=True) if value is not None}


_beat_now: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}


def _wake_heartbeat(loop: asyncio.AbstractEventLoop) -> None:
    """A new turn is marked alive at once, not at the next beat."""
    event = _beat_now.get(loop)
    if event is not None:
        event.set()


def _ensure_background(loop: asyncio.AbstractEventLoop) -> None:
    tasks = _background.get(loop)
    if tasks and not any(task.done() for task in tasks):
        return
    for task in tasks or ():
        task.cancel()
    _background[loop] = [
        loop.create_task(_listen_for_stops(), name="nexus-stop-listener"),
        loop.create_task(_heartbeat(), name="nexus-turn-heartbeat"),
    ]


async def _listen_for_stops() -> None:
    while True:
        client = hub.redis()
        if client is None:
            return
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(STOP_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    key = message["data"].decode()
                    running = _running.get(key)
                    if running is not None:
                        running[1].cancel()
        except asyncio.CancelledError:
            raise
        except Exception:  # Redis went away: listen again once it is back
            logger.warning("Lost the turn-stop channel; listening again", exc_info=True)
            await asyncio.sleep(1)


async def _heartbeat() -> None:
    wake = _beat_now.setdefault(asyncio.get_running_loop(), asyncio.Event())
    while True:
        wake.clear()
        client = hub.redis()
        if client is None:
            return
        keys = [*_running, *journal.pending_keys()]
        if keys:
            try:
                async with client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.set(alive_key(key), "1", px=int(settings.STREAM_ALIVE_SECONDS * 1000))
                    await pipe.execute()
            except Exception:
                logger.warning("Could not mark running turns alive", exc_info=True)
        # Three beats per lifetime of a key: one missed beat does not make a turn look dead.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=settings.STREAM_ALIVE_SECONDS / 3)
