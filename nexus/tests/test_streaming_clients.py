"""What streaming clients see, whatever Accept header they send.

go-openai, httpx-sse, EventSource and reqwest-eventsource send `Accept: text/event-stream`
on every stream; others send `*/*`, nothing, or something odd. The four streaming endpoints
stream to all of them, errors stay JSON in the one error shape, and JSON endpoints stay JSON.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from accounts.models import User
from chats.tests import conftest as chats_fixtures
from chats.tests.conftest import bearer, read_events, send

# The chats tests' fixtures: a model on the fake upstream and a user to chat with it (the
# streaming tests need the real transactions it sets up; the JSON ones do not).
chat = chats_fixtures.chat
_release_connections_of_sync_threads = chats_fixtures._release_connections_of_sync_threads

ACCEPTS = {
    "event-stream": "text/event-stream",
    "anything": "*/*",
    "absent": None,
    "empty": "",
    "garbage": "garbage;;;, =/=",
    "browser-page": "text/html,application/xhtml+xml;q=0.9",
    "json": "application/json",
}
ACCEPT_VALUES = pytest.mark.parametrize("accept", list(ACCEPTS.values()), ids=list(ACCEPTS))
# Enough for the error paths: the header every SSE client sends, and the two odd ones.
ODD_ACCEPTS = pytest.mark.parametrize(
    "accept", ["text/event-stream", "garbage;;;", ""], ids=["event-stream", "garbage", "empty"]
)


@pytest.fixture
def reader(db) -> dict[str, str]:
    """The headers of a user who only reads JSON."""
    return bearer(User.objects.create_user("dave@example.com", "correct horse battery staple"))


def with_accept(headers: dict[str, str], accept: str | None) -> dict[str, str]:
    return headers if accept is None else {**headers, "Accept": accept}


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error) >= {"type", "code", "message", "param", "fields"}


async def completion_chunks(response: Any) -> list[Any]:
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    payloads = [line[len("data: ") :] for line in body.splitlines() if line.startswith("data: ")]
    return [payload if payload == "[DONE]" else json.loads(payload) for payload in payloads]


# --- the four streaming endpoints stream ----------------------------------------------------


@ACCEPT_VALUES
async def test_chat_send_streams_events_whatever_the_client_accepts(async_client, chat, accept):
    chat.upstream.configure(reply="Hello there")
    response = await send(async_client, with_accept(chat.headers, accept), message="hi", model="gpt-test")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = await read_events(response)
    assert [event.event for event in events] == ["start", "delta", "delta", "done"]


@ACCEPT_VALUES
async def test_a_streamed_completion_streams_chunks_whatever_the_client_accepts(async_client, chat, accept):
    chat.upstream.configure(reply="one two three")
    response = await async_client.post(
        "/v1/chat/completions",
        {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        content_type="application/json",
        headers=with_accept(chat.headers, accept),
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    chunks = await completion_chunks(response)
    assert chunks[-1] == "[DONE]"
    text = "".join(
        chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks[:-1] if chunk["choices"]
    )
    assert text == "one two three"


@ACCEPT_VALUES
async def test_a_finished_reply_replays_whatever_the_client_accepts(async_client, chat, accept):
    chat.upstream.configure(reply="kept for later")
    first = await read_events(await send(async_client, chat.headers, message="hi", model="gpt-test"))
    message_id = first[0].data["message_id"]
    response = await async_client.get(
        f"/chat/messages/{message_id}/stream",
        headers=with_accept({**chat.headers, "Last-Event-ID": "1"}, accept),
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    replay = await read_events(response)
    assert [event.id for event in replay] == [event.id for event in first[1:]]
    assert replay[-1].event == "done"


@ACCEPT_VALUES
async def test_regenerate_streams_a_new_reply_whatever_the_client_accepts(async_client, chat, accept):
    chat.upstream.configure(reply="first answer")
    first = await read_events(await send(async_client, chat.headers, message="question", model="gpt-test"))
    chat.upstream.configure(reply="second answer")
    response = await async_client.post(
        f"/chat/messages/{first[0].data['message_id']}/regenerate", headers=with_accept(chat.headers, accept)
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = await read_events(response)
    assert "".join(event.data["content"] for event in events if event.event == "delta") == "second answer"
    assert events[-1].event == "done"


@pytest.mark.live
def test_a_real_sse_client_on_a_live_server_is_streamed_to(module_server, chat):
    """Over daphne, as go-openai asks: Accept and Cache-Control of an event stream."""
    chat.upstream.configure(reply="over the wire")
    headers = {**bearer(chat.user), "Accept": "text/event-stream", "Cache-Control": "no-cache"}
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with (
        httpx.Client(base_url=module_server.url, timeout=10) as http,
        http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"


# --- errors before the stream are JSON in the error shape -----------------------------------


@ODD_ACCEPTS
async def test_an_unauthenticated_stream_is_a_json_401(async_client, chat, accept):
    response = await send(async_client, with_accept({}, accept), message="hi", model="gpt-test")
    assert_error(response, 401, "not_authenticated")


@ODD_ACCEPTS
async def test_bad_input_to_chat_send_is_a_json_400_naming_the_field(async_client, chat, accept):
    response = await send(async_client, with_accept(chat.headers, accept), model="gpt-test")
    assert_error(response, 400, "required")
    assert "message" in response.json()["error"]["fields"]


@ODD_ACCEPTS
async def test_a_completion_without_a_model_is_a_json_400(async_client, chat, accept):
    response = await async_client.post(
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}], "stream": True},
        content_type="application/json",
        headers=with_accept(chat.headers, accept),
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["param"] == "model"


@ODD_ACCEPTS
async def test_resuming_with_a_bad_last_event_id_is_a_json_400(async_client, chat, accept):
    first = await read_events(await send(async_client, chat.headers, message="hi", model="gpt-test"))
    response = await async_client.get(
        f"/chat/messages/{first[0].data['message_id']}/stream",
        headers=with_accept({**chat.headers, "Last-Event-ID": "soon"}, accept),
    )
    assert_error(response, 400, "invalid")
    assert "last_event_id" in response.json()["error"]["fields"]


@ODD_ACCEPTS
async def test_regenerating_a_missing_message_is_a_json_404(async_client, chat, accept):
    response = await async_client.post(
        "/chat/messages/999999/regenerate", headers=with_accept(chat.headers, accept)
    )
    assert_error(response, 404, "not_found")


# --- JSON endpoints stay JSON -----------------------------------------------------------------


@ACCEPT_VALUES
def test_a_json_endpoint_answers_json_whatever_the_client_accepts(client, reader, accept):
    response = client.get("/chat/conversations", headers=with_accept(reader, accept))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["results"] == []


@ODD_ACCEPTS
async def test_a_completion_not_streamed_is_json_even_to_an_sse_client(async_client, chat, accept):
    chat.upstream.configure(reply="whole")
    response = await async_client.post(
        "/v1/chat/completions",
        {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
        content_type="application/json",
        headers=with_accept(chat.headers, accept),
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["choices"][0]["message"]["content"] == "whole"


def test_json_asked_with_an_indent_is_indented(client, reader):
    response = client.get("/chat/conversations", headers={**reader, "Accept": "application/json; indent=2"})
    assert response.status_code == 200
    assert response.content.decode().startswith('{\n  "')


# --- an explicit format ----------------------------------------------------------------------


def test_an_explicit_format_wins_over_an_accept_no_renderer_has(client, db):
    response = client.get("/api/schema?format=json", headers={"Accept": "text/event-stream"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert response.json()["info"]["title"] == "Nexus API"


def test_without_a_format_an_unmatched_accept_gets_the_views_first_renderer(client, db):
    response = client.get("/api/schema", headers={"Accept": "text/event-stream"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert b"openapi: 3" in response.content


def test_a_format_no_renderer_has_is_ignored_rather_than_a_404(client, reader):
    response = client.get("/chat/conversations?format=xml", headers={**reader, "Accept": "text/event-stream"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["results"] == []
