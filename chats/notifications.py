"""Notifications to every open WebSocket of a user, through the channel layer.

They are sent after the transaction that caused them commits, so no tab hears of a change
that was rolled back; a channel layer that is down costs a log line, never the request.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def _send(user_id: int, event: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            user_group(user_id), {"type": "chat.notify", "event": event, "payload": payload}
        )
    except Exception:  # a notification is best effort; the change itself is saved
        logger.warning("Could not notify user %s of %s", user_id, event, exc_info=True)


def notify_user(*, user_id: int, event: str, payload: dict[str, Any]) -> None:
    transaction.on_commit(lambda: _send(user_id, event, payload))
