"""The chat WebSocket: the same turn and events as SSE, plus notifications to all of a user's tabs.

Client frames: `{"type": "send", ...fields of POST /chat/send}`, `{"type": "stop", "message_id"}`,
`{"type": "resume", "message_id", "last_event_id"}`.
Server frames: `{"type": "start"|"delta"|"done"|"error", "id": n, ...}` for a turn, and
`{"type": "conversation.created"|"conversation.updated"|"conversation.deleted", ...}`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from rest_framework.exceptions import APIException, AuthenticationFailed, ParseError, ValidationError

from accounts.models import ApiKey, User
from accounts.services import bearer_authenticate
from chats.notifications import user_group
from chats.recovery import message_events
from chats.selectors import message_get
from chats.streams import StreamEvent, hub
from chats.turn import PreparedTurn, TurnSpec, start_turn, stop_turn, turn_prepare
from chats.views import SendInput
from nexus.lib.errors import exception_handler

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_TRY_AGAIN = 1013  # a dependency (the token denylist) cannot be read right now


def _error_frame(exc: Exception) -> dict[str, Any]:
    response = exception_handler(exc, {})
    if response is None:
        logger.exception("Unexpected error on the chat WebSocket", exc_info=exc)
        return {"type": "error", "error": {"code": "server_error", "message": "Something went wrong."}}
    return {"type": "error", "status": response.status_code, **(response.data or {})}


class ChatConsumer(AsyncJsonWebsocketConsumer):
    user: User
    api_key: ApiKey | None

    async def connect(self) -> None:
        token = self._token()
        try:
            if not token:
                raise AuthenticationFailed("No token.")
            self.user, self.api_key = await database_sync_to_async(bearer_authenticate)(token=token)
        except AuthenticationFailed:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        except APIException:
            await self.close(code=CLOSE_TRY_AGAIN)
            return
        self.group = user_group(self.user.pk)
        self.relays: set[asyncio.Task[None]] = set()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    def _token(self) -> str:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        if query.get("token"):
            return query["token"][0]
        for name, value in self.scope.get("headers", []):
            if name == b"authorization":
                scheme, _, credentials = value.decode().partition(" ")
                if scheme.lower() == "bearer":
                    return credentials.strip()
        return ""

    async def disconnect(self, code: int) -> None:
        # The turns go on; only this connection's relays of them end.
        for relay in getattr(self, "relays", ()):
            relay.cancel()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        try:
            content = await self.decode_json(text_data) if text_data else None
        except ValueError:
            content = None
        if content is None:
            await self.send_json(_error_frame(ParseError("Send each frame as a JSON text message.")))
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind == "send":
                await self._send_turn(content)
            elif kind == "stop":
                await self._stop(content)
            elif kind == "resume":
                await self._resume(content)
            else:
                raise ValidationError({"type": ["Use send, stop or resume."]})
        except APIException as exc:
            await self.send_json(_error_frame(exc))

    async def _send_turn(self, content: dict[str, Any]) -> None:
        fields = {key: value for key, value in content.items() if key != "type"}
        serializer = SendInput(data=fields)
        if not serializer.is_valid():
            raise ValidationError(serializer.errors)
        prepared: PreparedTurn = await database_sync_to_async(turn_prepare)(
            user=self.user, api_key=self.api_key, spec=TurnSpec(**serializer.validated_data)
        )
        start_turn(prepared)
        self._relay(hub.subscribe_batches(prepared.stream_key))

    def _relay(self, batches: AsyncIterator[list[StreamEvent]]) -> None:
        async def relay() -> None:
            async for batch in batches:
                for item in batch:
                    await self.send_json({"type": item.event, "id": item.id, **item.data})

        task = asyncio.create_task(relay())
        self.relays.add(task)
        task.add_done_callback(self.relays.discard)

    async def _resume(self, content: dict[str, Any]) -> None:
        message_id, after = content.get("message_id"), content.get("last_event_id", 0)
        if not isinstance(message_id, int):
            raise ValidationError({"message_id": ["A message id is required."]})
        if not isinstance(after, int) or after < 0:
            raise ValidationError({"last_event_id": ["Use the id of the last event you received."]})
        message = await database_sync_to_async(message_get)(user=self.user, message_id=message_id)
        self._relay(message_events(message, after))

    async def _stop(self, content: dict[str, Any]) -> None:
        message_id = content.get("message_id")
        if not isinstance(message_id, int):
            raise ValidationError({"message_id": ["A message id is required."]})
        await database_sync_to_async(stop_turn)(user=self.user, message_id=message_id)

    async def chat_notify(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": event["event"], **event["payload"]})
