"""Where a turn's events wait for their readers, in this process and across processes.

A turn publishes numbered events (`start`, `delta`..., then `done` or `error`) to the
stream of its assistant message. Readers (the SSE response, a WebSocket, a client that
resumes with Last-Event-ID) subscribe from an event id and receive what follows, live,
until the end. The turn never waits for a reader, so a reader that goes away costs it
nothing.

Readers in the process that runs the turn read from memory. With Redis configured, the
events are also appended to a Redis stream so that a reader on any other process can
resume: every FLUSH_INTERVAL, the events published since the last flush become ONE entry
(its id is the id of its last event, its `events` field their JSON list), so a token costs
a list append here, not a Redis command. The buffer expires STREAM_BUFFER_SECONDS after
its last write. Turns nobody can resume (the stateless gateway's) are not mirrored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

TERMINAL_EVENTS = frozenset({"done", "error"})
FLUSH_INTERVAL = 0.02  # seconds between Redis writes of a running turn's events


@dataclass(frozen=True, slots=True)
class StreamEvent:
    id: int
    event: str
    data: dict[str, Any]

    @property
    def terminal(self) -> bool:
        return self.event in TERMINAL_EVENTS

    def as_sse(self) -> bytes:
        return f"id: {self.id}\nevent: {self.event}\ndata: {json.dumps(self.data)}\n\n".encode()


@dataclass
class _Stream:
    events: list[StreamEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    mirrored: bool = True
    unflushed: list[StreamEvent] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1].terminal


def stream_key_for(message_id: int) -> str:
    """The stream of the turn writing this assistant message."""
    return f"message:{message_id}"


def buffer_key(key: str) -> str:
    """The Redis stream holding a turn's events for readers in other processes."""
    return f"nexus:stream:{key}"


def encode_entry(events: list[StreamEvent]) -> dict[Any, Any]:
    """Events as one Redis stream entry."""
    return {"events": json.dumps([[item.id, item.event, item.data] for item in events])}


def decode_entry(fields: dict[bytes, bytes]) -> list[StreamEvent]:
    return [StreamEvent(event_id, event, data) for event_id, event, data in json.loads(fields[b"events"])]


def alive_key(key: str) -> str:
    """Set, with a short expiry, while some process runs the turn (chats.runner beats it)."""
    return f"nexus:alive:{key}"


def interrupted_event(event_id: int, message_id: int | None) -> StreamEvent:
    return StreamEvent(
        event_id,
        "error",
        {"message_id": message_id, "error": {"code": "interrupted", "message": "The reply did not finish."}},
    )


class StreamHub:
    """The streams of the turns running in this process, by key, mirrored to Redis if configured."""

    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}
        self._redis: aioredis.Redis | None = None
        self._redis_loop: asyncio.AbstractEventLoop | None = None

    # --- Redis ------------------------------------------------------------------------

    def redis(self) -> aioredis.Redis | None:
        """A client bound to the running loop (tests run several loops in one process)."""
        if not settings.REDIS_URL:
            return None
        loop = asyncio.get_running_loop()
        if self._redis is None or self._redis_loop is not loop:
            self._redis = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
            self._redis_loop = loop
        return self._redis

    async def _flush(self, key: str, stream: _Stream) -> None:
        client = self.redis()
        while stream.unflushed:
            if not stream.unflushed[-1].terminal:
                await asyncio.sleep(FLUSH_INTERVAL)
            batch, stream.unflushed = stream.unflushed, []
            if client is None:
                continue
            try:
                async with client.pipeline(transaction=False) as pipe:
                    pipe.xadd(buffer_key(key), encode_entry(batch), id=f"{batch[-1].id}-0")
                    pipe.expire(buffer_key(key), settings.STREAM_BUFFER_SECONDS)
                    await pipe.execute()
            except Exception:  # the turn and local readers go on; only other processes miss it
                logger.warning("Could not buffer events of %s in Redis", key, exc_info=True)

    # --- writing ----------------------------------------------------------------------

    def open(self, key: str, *, mirrored: bool = True) -> None:
        """Starts a stream; `mirrored=False` keeps it out of Redis (no one can resume it)."""
        self._streams.setdefault(key, _Stream(mirrored=mirrored))

    def publish(self, key: str, event: str, data: dict[str, Any]) -> StreamEvent:
        stream = self._streams.setdefault(key, _Stream())
        item = StreamEvent(id=len(stream.events) + 1, event=event, data=data)
        stream.events.append(item)
        # Wake every reader waiting now; later readers wait on a fresh event.
        stream.changed.set()
        stream.changed = asyncio.Event()
        if stream.mirrored and settings.REDIS_URL:
            stream.unflushed.append(item)
            if stream.flusher is None or stream.flusher.done():
                stream.flusher = asyncio.get_running_loop().create_task(self._flush(key, stream))
        return item

    async def drain(self, key: str) -> None:
        """Waits until every event of the stream is in Redis."""
        stream = self._streams.get(key)
        if stream is not None and stream.flusher is not None:
            await asyncio.shield(stream.flusher)

    def close(self, key: str) -> None:
        self._streams.pop(key, None)

    def has(self, key: str) -> bool:
        return key in self._streams

    # --- reading ----------------------------------------------------------------------

    async def subscribe(self, key: str, after: int = 0) -> AsyncIterator[StreamEvent]:
        """The events after `after`, live until the end: from memory, else from Redis."""
        async for batch in self.subscribe_batches(key, after):
            for item in batch:
                yield item

    async def subscribe_batches(self, key: str, after: int = 0) -> AsyncIterator[list[StreamEvent]]:
        """The same events, in lists of all that were ready at once: a reader that fell
        behind (a busy server) catches up in one write instead of one per token."""
        stream = self._streams.get(key)
        if stream is None:
            async for batch in self._subscribe_redis(key, after):
                yield batch
            return
        position = after
        while True:
            ready = stream.events[position:]
            if ready:
                position += len(ready)
                end = next((index for index, item in enumerate(ready) if item.terminal), None)
                yield ready if end is None else ready[: end + 1]
                if end is not None:
                    return
            elif stream.finished:
                return
            else:
                await stream.changed.wait()

    async def buffered(self, key: str) -> bool:
        """Whether the turn's events can be read live; False when Redis cannot be asked,
        so that readers fall back to what the database saved."""
        if key in self._streams:
            return True
        client = self.redis()
        if client is None:
            return False
        try:
            return bool(await client.exists(buffer_key(key)))
        except RedisError:
            logger.warning("Could not look for the buffer of %s in Redis", key, exc_info=True)
            return False

    async def _subscribe_redis(self, key: str, after: int) -> AsyncIterator[list[StreamEvent]]:
        client = self.redis()
        if client is None:
            return
        cursor = f"{after}-0"
        while True:
            replies: Any = await client.xread({buffer_key(key): cursor}, count=500, block=5000)
            if not replies:
                if not await client.exists(buffer_key(key)):
                    return  # expired, or the writer died before writing anything
                if not await client.exists(alive_key(key)):
                    # Quiet, and no process runs the turn: its writer died mid-reply.
                    yield [interrupted_event(int(cursor.split("-")[0]) + 1, None)]
                    return
                continue
            batch: list[StreamEvent] = []
            for entry_id, fields in replies[0][1]:
                cursor = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                # An entry may begin before the reader's last event: skip what it had.
                batch += [item for item in decode_entry(fields) if item.id > after]
            end = next((index for index, item in enumerate(batch) if item.terminal), None)
            if batch:
                yield batch if end is None else batch[: end + 1]
            if end is not None:
                return


hub = StreamHub()
