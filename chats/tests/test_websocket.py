"""The chat WebSocket: the same turn as SSE, and notifications to every tab of the user."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from accounts.services import api_key_create
from chats.models import Conversation, Message
from chats.routing import websocket_urlpatterns
from chats.services import conversation_update
from chats.tests.conftest import bearer

pytestmark = pytest.mark.django_db(transaction=True)

application = URLRouter(websocket_urlpatterns)


def connect_as(token: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/chat?token={token}")


async def receive_until(communicator, kind: str, limit: int = 200) -> list[dict]:
    frames = []
    for _ in range(limit):
        frame = await communicator.receive_json_from(timeout=5)
        frames.append(frame)
        if frame["type"] == kind:
            return frames
    raise AssertionError(f"no {kind} frame in {frames}")


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def closed_with(communicator) -> int:
    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    return output["code"]


@pytest.mark.parametrize("token", ["", "not-a-token", "nx-unknownkey"])
async def test_a_connection_without_valid_credentials_is_accepted_then_closed_with_4401(chat, token):
    communicator = connect_as(token)
    assert (await communicator.connect())[0]
    assert await closed_with(communicator) == 4401
    await communicator.wait()


@pytest.mark.parametrize("origin", [b"https://evil.example", b"null", b"http://localhost.evil.example"])
async def test_a_page_of_a_forbidden_origin_is_accepted_then_closed_with_4403(chat, origin):
    communicator = WebsocketCommunicator(
        application, f"/ws/chat?token={token_of(chat.headers)}", headers=[(b"origin", origin)]
    )
    assert (await communicator.connect())[0]
    assert await closed_with(communicator) == 4403
    await communicator.wait()


@pytest.mark.parametrize("origin", [b"http://localhost:3000", b"https://chat.example.com"])
async def test_pages_of_allowed_hosts_and_cors_origins_are_served(chat, settings, origin):
    settings.ALLOWED_HOSTS = ["localhost"]
    settings.CORS_ALLOWED_ORIGINS = ["https://chat.example.com"]
    communicator = WebsocketCommunicator(
        application, f"/ws/chat?token={token_of(chat.headers)}", headers=[(b"origin", origin)]
    )
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "send", "message": "hi", "model": "gpt-test"})
    assert (await receive_until(communicator, "done"))[-1]["type"] == "done"
    await communicator.disconnect()


async def test_a_conversation_over_the_websocket(chat):
    chat.upstream.configure(reply="Hello from the socket")
    communicator = connect_as(token_of(chat.headers))
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "send", "message": "hi", "model": "gpt-test"})
    frames = await receive_until(communicator, "done")
    turn = [frame for frame in frames if frame["type"] in {"start", "delta", "done"}]
    assert turn[0]["type"] == "start"
    assert "".join(f["content"] for f in turn if f["type"] == "delta") == "Hello from the socket"
    assert [f["id"] for f in turn] == list(range(1, len(turn) + 1))
    reply = await Message.objects.aget(pk=turn[0]["message_id"])
    assert (reply.content, reply.status) == ("Hello from the socket", "complete")
    await communicator.disconnect()


async def test_an_api_key_authenticates_the_websocket(chat):
    _, secret = await sync_to_async(api_key_create)(user=chat.user, name="cli")
    communicator = connect_as(secret)
    assert (await communicator.connect())[0]
    await communicator.disconnect()


async def test_notifications_reach_the_users_other_connections(chat):
    chat.upstream.configure(reply="ok")
    first, second = connect_as(token_of(chat.headers)), connect_as(token_of(chat.headers))
    assert (await first.connect())[0] and (await second.connect())[0]
    await first.send_json_to({"type": "send", "message": "New topic", "model": "gpt-test"})
    created = await receive_until(second, "conversation.created")
    assert created[-1]["title"] == "New topic"
    conversation_id = created[-1]["id"]
    await receive_until(first, "done")

    conversation = await Conversation.objects.aget(pk=conversation_id)
    await sync_to_async(_rename)(conversation)
    updated = await receive_until(second, "conversation.updated")
    assert updated[-1]["title"] == "Renamed"
    await first.disconnect()
    await second.disconnect()


def _rename(conversation):
    conversation_update(conversation=conversation, title="Renamed")


async def test_another_users_connection_hears_nothing(chat, alice):
    mine = connect_as(token_of(chat.headers))
    theirs = connect_as(token_of(await sync_to_async(bearer)(alice)))
    assert (await mine.connect())[0] and (await theirs.connect())[0]
    await mine.send_json_to({"type": "send", "message": "secret plans", "model": "gpt-test"})
    await receive_until(mine, "done")
    assert await theirs.receive_nothing(timeout=0.3)
    await mine.disconnect()
    await theirs.disconnect()


async def test_stop_over_the_websocket(chat):
    chat.upstream.configure(tokens=500, token_delay=0.01)
    communicator = connect_as(token_of(chat.headers))
    await communicator.connect()
    await communicator.send_json_to({"type": "send", "message": "long", "model": "gpt-test"})
    start = await receive_until(communicator, "start")
    message_id = start[-1]["message_id"]
    await receive_until(communicator, "delta")
    await communicator.send_json_to({"type": "stop", "message_id": message_id})
    done = await receive_until(communicator, "done", limit=600)
    assert done[-1]["finish_reason"] == "stopped"
    reply = await Message.objects.aget(pk=message_id)
    assert reply.status == "stopped"
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "dance"}, "invalid"),
        ({"type": "send", "message": ""}, "blank"),
        ({"type": "send", "message": "hi", "model": "nope"}, "model_not_found"),
        ({"type": "stop"}, "invalid"),
        ({"type": "stop", "message_id": 987654}, "not_found"),
        ({"type": "resume", "message_id": 987654}, "not_found"),
        ({"type": "resume", "message_id": 1, "last_event_id": -1}, "invalid"),
        ({"type": "resume", "message_id": 1, "last_event_id": "\u00b2"}, "invalid"),
        ({"type": "resume", "message_id": 1, "last_event_id": "2"}, "invalid"),
        ({"type": "resume", "message_id": 1, "last_event_id": 1.5}, "invalid"),
        ({"type": "resume", "message_id": 1, "last_event_id": True}, "invalid"),
        ({"type": "resume", "message_id": 2**70, "last_event_id": 0}, "invalid"),
        ({"type": "resume", "message_id": "\u00b9\u00b2"}, "invalid"),
        ({"type": "stop", "message_id": 2**64}, "invalid"),
        ({"type": "send", "message": "hi", "conversation_id": 2**70}, "not_found"),
        ("{not json", "parse_error"),
        ("[1, 2]", "invalid"),
    ],
)
async def test_bad_frames_get_an_error_frame_and_the_socket_stays_open(chat, frame, code):
    communicator = connect_as(token_of(chat.headers))
    await communicator.connect()
    if isinstance(frame, str):
        await communicator.send_to(text_data=frame)
    else:
        await communicator.send_json_to(frame)
    reply = await communicator.receive_json_from(timeout=5)
    assert reply["type"] == "error"
    assert reply["error"]["code"] == code
    await communicator.send_json_to({"type": "send", "message": "still there?", "model": "gpt-test"})
    assert (await receive_until(communicator, "done"))[-1]["type"] == "done"
    await communicator.disconnect()


async def test_a_reply_is_resumed_over_the_websocket(chat):
    chat.upstream.configure(reply="alpha beta gamma delta")
    communicator = connect_as(token_of(chat.headers))
    await communicator.connect()
    await communicator.send_json_to({"type": "send", "message": "go", "model": "gpt-test"})
    first = await receive_until(communicator, "done")
    message_id = next(frame for frame in first if frame["type"] == "start")["message_id"]
    await communicator.send_json_to({"type": "resume", "message_id": message_id, "last_event_id": 2})
    again = await receive_until(communicator, "done")
    turn = [frame for frame in first if frame["type"] in {"start", "delta", "done"}]
    assert [frame["id"] for frame in again] == [frame["id"] for frame in turn if frame["id"] > 2]
    await communicator.disconnect()
