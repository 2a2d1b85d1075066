"""Replies that outlive their stream: resuming a reader, and repairing turns whose process died."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_redis import get_redis_connection

from chats import runner
from chats.models import Message, MessageStatus
from chats.streams import (
    StreamEvent,
    buffer_key,
    decode_entry,
    encode_entry,
    hub,
    interrupted_event,
    stream_key_for,
)

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
        redis.xadd(buffer_key(key), encode_entry([end]), id=f"{end.id}-0")
    return "".join(item.data.get("content", "") for item in events if item.event == "delta")


def streams_repair(*, dry_run: bool = False, message_ids: list[int] | None = None) -> list[int]:
    """Marks `failed` the replies still `streaming` whose turn no process runs; returns their ids.

    `message_ids` limits it to those replies, known dead: no age or alive mark is asked for.
    """
    streaming = Message.objects.filter(status=MessageStatus.STREAMING)
    if message_ids is not None:
        dead = list(streaming.filter(pk__in=message_ids).values_list("pk", flat=True))
        return dead if dry_run else _mark_failed(dead)
    candidates = list(streaming.values_list("pk", "created_at"))
    keys = [stream_key_for(message_id) for message_id, _ in candidates]
    alive = runner.alive_elsewhere(keys)
    now = timezone.now()
    too_old, too_young = now - LONGEST_TURN, now - timedelta(seconds=settings.STREAM_ALIVE_SECONDS)
    dead = [
        message_id
        for (message_id, created_at), key in zip(candidates, keys, strict=True)
        if not runner.running_here(key)
        and created_at < too_young
        and (key not in alive or created_at < too_old)
    ]
    return dead if dry_run else _mark_failed(dead)


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
