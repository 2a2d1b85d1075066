"""Maintenance mode: AI calls answer 503 `maintenance` with the operator's message; admins pass."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from accounts.services import api_key_create
from billing.models import UsageRecord
from chats.models import Conversation
from chats.routing import websocket_urlpatterns
from chats.tests.conftest import read_events, send
from nexus.services import runtime_settings_update

pytestmark = pytest.mark.django_db(transaction=True)


def maintenance(actor, message: str = "Upgrading the database; back at 14:00 UTC.") -> None:
    runtime_settings_update(actor=actor, changes={"maintenance_mode": True, "maintenance_message": message})


async def test_a_user_is_told_the_operators_message_with_503(async_client, chat):
    await sync_to_async(maintenance)(chat.admin)
    response = await send(async_client, chat.user_headers, message="Hello", model="gpt-test")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "maintenance"
    assert error["message"] == "Upgrading the database; back at 14:00 UTC."
    assert not await Conversation.objects.aexists()
    assert chat.upstream.requests() == []


async def test_an_admin_still_chats(async_client, chat):
    await sync_to_async(maintenance)(chat.admin)
    response = await send(async_client, chat.admin_headers, message="Does it work?", model="gpt-test")
    assert response.status_code == 200
    events = await read_events(response)
    assert events[-1].event == "done"


async def test_without_a_message_a_default_one_is_given(async_client, chat):
    await sync_to_async(maintenance)(chat.admin, message="")
    response = await send(async_client, chat.user_headers, message="Hello", model="gpt-test")
    assert response.status_code == 503
    assert "maintenance" in response.json()["error"]["message"]


def test_the_openai_gateway_answers_503_too(api_client, chat):
    maintenance(chat.admin)
    _, secret = api_key_create(user=chat.user, name="sdk")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api_client.post(
        "/v1/chat/completions",
        {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]},
        format="json",
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "maintenance"
    assert not UsageRecord.objects.exists()


async def test_switching_it_off_lets_users_in_again(async_client, chat):
    await sync_to_async(maintenance)(chat.admin)
    await sync_to_async(runtime_settings_update)(actor=chat.admin, changes={"maintenance_mode": False})
    response = await send(async_client, chat.user_headers, message="Hello again", model="gpt-test")
    assert response.status_code == 200
    assert (await read_events(response))[-1].event == "done"


async def test_the_websocket_answers_with_a_maintenance_error_frame(chat):
    await sync_to_async(maintenance)(chat.admin)
    token = chat.user_headers["Authorization"].removeprefix("Bearer ")
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/chat?token={token}")
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "send", "message": "hi", "model": "gpt-test"})
    frame = await communicator.receive_json_from(timeout=5)
    while frame["type"] != "error":
        frame = await communicator.receive_json_from(timeout=5)
    assert frame["error"]["code"] == "maintenance"
    assert frame["error"]["message"] == "Upgrading the database; back at 14:00 UTC."
    await communicator.disconnect()
