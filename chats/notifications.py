"""Notifications to every open WebSocket of a user, through the channel layer.

They are sent after the transaction that caused them commits, so no tab hears of a change
that was rolled back; a channel layer that is down costs a log line, never the request.

Sent from a request's worker thread, a notification is handed to the event loop that thread
serves and the thread goes on: it never waits for Redis, nor crosses back into the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# The notifications on their way, kept so that none is collected before it is sent.
_sending: set[asyncio.Task[None]] = set()


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def _serving_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop this code runs on, or the one whose worker thread this is (asgiref
    records it for its own async_to_sync); None in a plain thread (commands, the shell)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    loop: asyncio.AbstractEventLoop | None = getattr(local, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


async def _group_send(user_id: int, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(user_group(user_id), message)
    except Exception:  # a notification is best effort; the change itself is saved
        logger.warning("Could not notify user %s of %s", user_id, message["event"], exc_info=True)


def _send(user_id: int, event: str, payload: dict[str, Any]) -> None:
    if get_channel_layer() is None:
        return
    message = {"type": "chat.notify", "event": event, "payload": payload}
    loop = _serving_loop()
    if loop is None:
        async_to_sync(_group_send)(user_id, message)
        return

    def schedule() -> None:
        task = loop.create_task(_group_send(user_id, message))
        _sending.add(task)
        task.add_done_callback(_sending.discard)

    loop.call_soon_threadsafe(schedule)


def notify_user(*, user_id: int, event: str, payload: dict[str, Any]) -> None:
    transaction.on_commit(lambda: _send(user_id, event, payload))
