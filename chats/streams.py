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

Memory: a finished turn that nobody can resume is dropped as soon as a reader has its last
event (readers already on it keep reading what they hold); a finished resumable one stays
in memory STREAM_MEMORY_SECONDS, then Redis alone serves it. Without Redis, memory is the
only buffer: it stays STREAM_BUFFER_SECONDS.

A reader on another process blocks on XREAD with a socket timeout longer than the block
(redis-py 8 defaults to 5 s, which made every quiet stretch of 5 s a TimeoutError), retries
a lost connection with a short backoff, and always ends: with the turn's last event, or
`interrupted` once the turn's alive mark (chats.runner) has lapsed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

TERMINAL_EVENTS = frozenset({"done", "error"})
FLUSH_INTERVAL = 0.02  # seconds between Redis writes of a running turn's events
READ_BLOCK_SECONDS = 5.0  # longest XREAD BLOCK of a reader; it looks at the alive mark between
# Longer than any block, or a quiet turn looks like a dead connection.
SOCKET_TIMEOUT_SECONDS = READ_BLOCK_SECONDS + 5
RECONNECT_DELAYS = (0.1, 2.0)  # first and longest wait before a reader asks a lost Redis again


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
    # A reader has been handed the last event (a gateway stream may then be dropped).
    taken: bool = False
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


def unavailable_event(event_id: int, message_id: int | None) -> StreamEvent:
    """Ends a reader that lost Redis for longer than a turn's alive mark lives: it cannot
    tell whether the turn goes on; the saved message will say."""
    return StreamEvent(
        event_id,
        "error",
        {
            "message_id": message_id,
            "error": {
                "code": "stream_unavailable",
                "message": "The reply cannot be followed right now; read the saved message later.",
            },
        },
    )


def _message_id(key: str) -> int | None:
    prefix, _, rest = key.partition(":")
    return int(rest) if prefix == "message" and rest.isdigit() else None


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
            self._redis = aioredis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=SOCKET_TIMEOUT_SECONDS
            )
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

    def release(self, key: str) -> None:
        """The turn has published its last event: its memory goes when no reader needs it."""
        stream = self._streams.get(key)
        if stream is None:
            return
        if not stream.mirrored and stream.taken:
            self.close(key)
            return
        # Without Redis, memory is the only buffer there is. With it, unread gateway streams
        # go after the same short while: their client left, or has yet to subscribe.
        delay: float = (
            settings.STREAM_MEMORY_SECONDS if settings.REDIS_URL else settings.STREAM_BUFFER_SECONDS
        )
        asyncio.get_running_loop().call_later(delay, self._forget, key, stream)

    def _forget(self, key: str, stream: _Stream) -> None:
        if self._streams.get(key) is not stream:
            return
        if stream.flusher is not None and not stream.flusher.done():
            # Redis has not got everything yet: readers that come later would miss the end.
            stream.flusher.add_done_callback(lambda _: self._forget(key, stream))
            return
        del self._streams[key]

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
                if end is not None:
                    stream.taken = True
                    if not stream.mirrored and self._streams.get(key) is stream and stream.finished:
                        # Nobody can resume it: this reader has it all, the process need not.
                        del self._streams[key]
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
        """The events after `after` from the Redis buffer, until the last one, or until the
        turn's alive mark lapses with nothing more to read (its writer died)."""
        if self.redis() is None:
            return
        cursor, block = after, READ_BLOCK_SECONDS
        failing_since: float | None = None
        delay = RECONNECT_DELAYS[0]
        started = True
        while True:
            client = self.redis()
            if client is None:  # REDIS_URL unset while reading (tests switch it)
                return
            try:
                if started and not await client.exists(buffer_key(key)):
                    return  # expired, never mirrored, or the writer died before writing anything
                started = False
                replies = await self._read(client, key, cursor, block)
                if not replies:
                    lifetime = await client.pttl(alive_key(key))  # ms; -2: no mark
                    if lifetime != -2:
                        # Quiet but alive: look again once the mark would lapse unless renewed.
                        block = min(max(lifetime / 1000 + 0.05, 0.1), READ_BLOCK_SECONDS)
                        continue
                    # No process runs the turn; its end may have landed just now.
                    replies = await self._read(client, key, cursor, None)
            except RedisError:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > settings.STREAM_ALIVE_SECONDS:
                    logger.warning("Gave up reading %s: Redis unreachable", key, exc_info=True)
                    yield [unavailable_event(cursor + 1, _message_id(key))]
                    return
                logger.warning("Lost Redis reading %s; asking again in %.1f s", key, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_DELAYS[1])
                continue
            failing_since, delay = None, RECONNECT_DELAYS[0]
            if not replies:
                yield [interrupted_event(cursor + 1, _message_id(key))]
                return
            batch: list[StreamEvent] = []
            for entry_id, fields in replies[0][1]:
                entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                cursor = int(entry.split("-")[0])
                # An entry may begin before the reader's last event: skip what it had.
                batch += [item for item in decode_entry(fields) if item.id > after]
            end = next((index for index, item in enumerate(batch) if item.terminal), None)
            if batch:
                yield batch if end is None else batch[: end + 1]
            if end is not None:
                return

    @staticmethod
    async def _read(client: aioredis.Redis, key: str, cursor: int, block: float | None) -> Any:
        """Entries after `cursor`, waiting up to `block` seconds for one (None: not at all)."""
        return await client.xread(
            {buffer_key(key): f"{cursor}-0"},
            count=500,
            block=None if block is None else int(block * 1000),
        )


hub = StreamHub()
