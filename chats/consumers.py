"""The chat WebSocket: the same turn and events as SSE, plus notifications to all of a user's tabs.

Client frames: `{"type": "send", ...fields of POST /chat/send}`, `{"type": "stop", "message_id"}`,
`{"type": "resume", "message_id", "last_event_id"}`.
Server frames: `{"type": "start"|"reasoning"|"delta"|"tool_call"|"done"|"error", "id": n, ...}`
(the SSE events of POST /chat/send, their data as the frame's fields) for a turn, and
`{"type": "conversation.created"|"conversation.updated"|"conversation.deleted", ...}`.

Every connection is accepted first, so that a refusal is a close code the client can read
(a handshake answered 403 reaches browsers as a bare 1006). The credentials are checked
again with every frame and notification, and the socket closes when they expire, so a
logout, a revoked key, a deactivated account or a changed password ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.exceptions import APIException, AuthenticationFailed, ParseError, ValidationError
from rest_framework_simplejwt.tokens import AccessToken

from accounts import restrictions
from accounts.models import ApiKey, User
from accounts.services import bearer_authenticate
from chats.notifications import user_group
from chats.recovery import message_events
from chats.selectors import message_get
from chats.streams import StreamEvent, hub
from chats.turn import PreparedTurn, TurnSpec, turn_prepare, turn_start, turn_stop
from chats.views import SendInput
from nexus.lib.client_address import forwarded_address
from nexus.lib.db_threads import db_queue, in_thread
from nexus.lib.errors import exception_handler

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
# A dependency (the token denylist, the channel layer) cannot be reached now. Not 1013:
# daphne (autobahn) lets an application close only with 1000 or 3000-4999.
CLOSE_TRY_AGAIN = 4503

# A pooled Redis connection that a restart of Redis closed fails once and is dropped; a
# process may hold a few of them, so joining the notification group is tried that often.
GROUP_JOIN_ATTEMPTS = 3
MAX_ID = 2**63 - 1  # ids are bigints: a larger number names nothing

Step = Callable[[User, ApiKey | None], Any]


@dataclass(frozen=True)
class Credentials:
    user: User
    api_key: ApiKey | None


class CredentialsEnded(Exception):
    """The token or key the socket opened with no longer authenticates anyone."""


def credentials_check(token: str, address: str | None = None) -> Credentials:
    """Who `token` (a JWT access token or an `nx-` key) authenticates now, by the rules and from
    the process caches of every HTTP request, a key's address ranges included:
    AuthenticationFailed if nobody, an APIException (503) when the logout denylist cannot be
    read."""
    if not token.strip():
        raise AuthenticationFailed("No token.")
    user, api_key = bearer_authenticate(token=token)
    if api_key is not None:
        try:
            restrictions.key_address_check(key=api_key, address=address)
        except restrictions.KeyAddressNotAllowed as exc:
            raise AuthenticationFailed(str(exc.detail)) from None
    return Credentials(user, api_key)


def credentials_expiry(token: str, credentials: Credentials) -> float | None:
    """When credentials that authenticated expire (epoch seconds); None for a key that never does."""
    if credentials.api_key is not None:
        expires_at = credentials.api_key.expires_at
        return expires_at.timestamp() if expires_at is not None else None
    # Verified a moment ago by credentials_check: only its expiry is read here.
    return float(AccessToken(token.strip(), verify=False)["exp"])  # type: ignore[arg-type]


def _error_frame(exc: Exception) -> dict[str, Any]:
    response = exception_handler(exc, {})
    if response is None:
        logger.exception("Unexpected error on the chat WebSocket", exc_info=exc)
        return {"type": "error", "error": {"code": "server_error", "message": "Something went wrong."}}
    return {"type": "error", "status": response.status_code, **(response.data or {})}


def _id(content: dict[str, Any], name: str, *, default: int | None = None, minimum: int = 1) -> int:
    """A non-negative JSON integer: not a bool, a float, nor a string of digits such as "²"."""
    value = content.get(name, default)
    if type(value) is not int or not minimum <= value <= MAX_ID:
        raise ValidationError({name: [f"Use an integer of at least {minimum}."]})
    return value


class OriginRefused(AsyncWebsocketConsumer):
    """What a page of a forbidden origin reaches: accepted, then closed with 4403."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_FORBIDDEN_ORIGIN, reason="This origin may not open the socket.")


class ChatConsumer(AsyncJsonWebsocketConsumer):
    serving = False  # authenticated and joined; frames racing a close are dropped
    token: str
    credentials: Credentials

    async def connect(self) -> None:
        await self.accept()
        self.relays: set[asyncio.Task[None]] = set()
        self.expiry: asyncio.Task[None] | None = None
        self.token = self._token()
        try:
            self.credentials = await in_thread(credentials_check)(self.token, self._address())
        except AuthenticationFailed as exc:
            await self.close(code=CLOSE_UNAUTHENTICATED, reason=_reason(exc))
            return
        except APIException:
            await self.close(code=CLOSE_TRY_AGAIN, reason="Credentials cannot be checked now: try again.")
            return
        self.group = user_group(self.credentials.user.pk)
        if not await self._join(self.group):
            await self.close(code=CLOSE_TRY_AGAIN, reason="Notifications are unavailable: try again.")
            return
        self.serving = True
        self._arm_expiry(credentials_expiry(self.token, self.credentials))

    def _address(self) -> str | None:
        """The client's address by the rule of every HTTP request (nexus.lib.client_address)."""
        client = self.scope.get("client") or ("", 0)
        headers = dict(self.scope.get("headers", []))
        return forwarded_address(
            remote_addr=str(client[0]),
            forwarded_for=headers.get(b"x-forwarded-for", b"").decode("latin-1"),
            trusted_proxies=settings.TRUSTED_PROXY_COUNT,
        )

    def _token(self) -> str:
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        if query.get("token"):
            return query["token"][0]
        for name, value in self.scope.get("headers", []):
            if name == b"authorization":
                scheme, _, credentials = value.decode(errors="replace").partition(" ")
                if scheme.lower() == "bearer":
                    return credentials.strip()
        return ""

    async def _join(self, group: str) -> bool:
        for attempt in range(1, GROUP_JOIN_ATTEMPTS + 1):
            try:
                await self.channel_layer.group_add(group, self.channel_name)
                return True
            except (RedisError, OSError) as exc:
                logger.warning("Joining %s failed (attempt %s): %s", group, attempt, exc)
        return False

    def _arm_expiry(self, expires_at: float | None) -> None:
        if expires_at is None:
            return

        async def expire() -> None:
            await asyncio.sleep(max(0.0, expires_at - time.time()))
            await self._end("The credentials expired: connect again.")

        self.expiry = asyncio.create_task(expire())

    async def _end(self, reason: str) -> None:
        """The caller is no longer who they were: nothing more reaches them, nothing starts."""
        if not self.serving:
            return
        self.serving = False
        if self.expiry is not None and self.expiry is not asyncio.current_task():
            self.expiry.cancel()
        for relay in self.relays:
            relay.cancel()
        await self.close(code=CLOSE_UNAUTHENTICATED, reason=reason)

    async def disconnect(self, code: int) -> None:
        # The turns go on; only this connection's relays of them end.
        self.serving = False
        expiry: asyncio.Task[None] | None = getattr(self, "expiry", None)
        if expiry is not None:
            expiry.cancel()
        for relay in getattr(self, "relays", ()):
            relay.cancel()
        if hasattr(self, "group"):
            # The membership expires by itself if Redis cannot be told now.
            with contextlib.suppress(RedisError, OSError):
                await self.channel_layer.group_discard(self.group, self.channel_name)

    def _as_caller(self, step: Step | None) -> tuple[Credentials, Any]:
        """In a worker thread: the credentials checked again, then `step` as their user."""
        try:
            credentials = credentials_check(self.token, self._address())
        except AuthenticationFailed as exc:
            raise CredentialsEnded(_reason(exc)) from exc
        return credentials, step(credentials.user, credentials.api_key) if step is not None else None

    async def _run(self, step: Step | None) -> Any:
        """One crossing into a thread per frame, never the shared one, so sockets run in parallel;
        a frame waits its turn for a database thread as an HTTP call does (503 busy past it)."""
        async with db_queue():
            self.credentials, result = await in_thread(self._as_caller)(step)
        return result

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if not self.serving:
            return
        try:
            content = await self.decode_json(text_data) if text_data else None
        except ValueError:
            content = None
        try:
            try:
                step, then = self._plan(content)
            except APIException:
                await self._run(None)  # a bad frame of a logged-out caller is answered 4401 too
                raise
            result = await self._run(step)
            then(result)
        except CredentialsEnded as exc:
            await self._end(str(exc))
        except APIException as exc:
            if self.serving:  # not closed by the expiry meanwhile
                await self.send_json(_error_frame(exc))

    def _plan(self, content: Any) -> tuple[Step, Callable[[Any], None]]:
        """The frame validated: the work to do in a thread as the caller, and what follows it here."""
        if content is None:
            raise ParseError("Send each frame as a JSON text message.")
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "send":
            fields = {key: value for key, value in content.items() if key != "type"}
            serializer = SendInput(data=fields)
            if not serializer.is_valid():
                raise ValidationError(serializer.errors)
            spec = TurnSpec(**serializer.validated_data)
            return (lambda user, key: turn_prepare(user=user, api_key=key, spec=spec)), self._start
        if kind == "stop":
            message_id = _id(content, "message_id")
            return (lambda user, key: turn_stop(user=user, message_id=message_id)), lambda _: None
        if kind == "resume":
            message_id = _id(content, "message_id")
            after = _id(content, "last_event_id", default=0, minimum=0)
            return (
                lambda user, key: message_get(user=user, message_id=message_id),
                lambda message: self._relay(message_events(message, after)),
            )
        raise ValidationError({"type": ["Use send, stop or resume."]})

    def _start(self, prepared: PreparedTurn) -> None:
        # Admitted and saved while the credentials held: it runs even if the socket closed since.
        turn_start(prepared)
        self._relay(hub.subscribe_batches(prepared.stream_key))

    def _relay(self, batches: AsyncIterator[list[StreamEvent]]) -> None:
        if not self.serving:  # closed while the frame was in its thread
            return

        async def relay() -> None:
            async for batch in batches:
                for item in batch:
                    await self.send_json({"type": item.event, "id": item.id, **item.data})

        task = asyncio.create_task(relay())
        self.relays.add(task)
        task.add_done_callback(self.relays.discard)

    async def chat_notify(self, event: dict[str, Any]) -> None:
        if not self.serving:
            return
        try:
            await self._run(None)
        except CredentialsEnded as exc:
            await self._end(str(exc))
            return
        except APIException:
            return  # who this is cannot be told now: say nothing rather than guess
        if self.serving:
            await self.send_json({"type": event["event"], **event["payload"]})


def _reason(exc: AuthenticationFailed) -> str:
    # A close frame's reason is at most 123 bytes.
    return str(exc.detail).encode()[:120].decode(errors="ignore")
