"""Streams that survive the client, across two server processes sharing PostgreSQL and Redis."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from chats.models import Message
from chats.recovery import streams_repair
from chats.tests.conftest import parse_sse

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def read_stream(response: httpx.Response, *, limit: int | None = None) -> list[tuple[int, str, dict]]:
    """SSE events of a streaming httpx response; stops after `limit` events (read on later)."""
    if not hasattr(response, "chunks"):
        response.chunks = response.iter_raw()  # type: ignore[attr-defined]
    events: list[tuple[int, str, dict]] = []
    buffer = b""
    for chunk in response.chunks:  # type: ignore[attr-defined]
        buffer += chunk
        *blocks, buffer = buffer.split(b"\n\n")
        for block in blocks:
            events.extend(parse_sse(block + b"\n\n"))
        if limit is not None and len(events) >= limit:
            break
    return events


def deltas(events) -> str:
    return "".join(data["content"] for _, name, data in events if name == "delta")


def expected_words(count: int) -> str:
    return " ".join(f"word{n}" for n in range(1, count + 1))


ENV = {"STREAM_ALIVE_SECONDS": "1"}


@pytest.fixture(scope="module")
def shared_servers(module_servers):
    return module_servers.start(**ENV), module_servers.start(**ENV)


@pytest.fixture
def servers(shared_servers, chat):
    return shared_servers


@pytest.fixture
def own_servers(start_server, chat):
    """For a test that kills one: its own pair."""
    return start_server(**ENV), start_server(**ENV)


def start_turn_on(server, chat, *, limit: int):
    with (
        server.client() as http,
        http.stream(
            "POST", "/chat/send", json={"message": "count", "model": "gpt-test"}, headers=chat.headers
        ) as response,
    ):
        assert response.status_code == 200
        return read_stream(response, limit=limit)


def test_a_stream_dropped_on_one_process_resumes_on_another_without_gap_or_duplicate(servers, chat):
    first, second = servers
    chat.upstream.configure(tokens=40, token_delay=0.01)
    seen = start_turn_on(first, chat, limit=6)
    message_id, last_id = seen[0][2]["message_id"], seen[-1][0]
    with (
        second.client() as http,
        http.stream(
            "GET",
            f"/chat/messages/{message_id}/stream",
            headers={**chat.headers, "Last-Event-ID": str(last_id)},
        ) as response,
    ):
        assert response.status_code == 200
        rest = read_stream(response)
    everything = seen + rest
    assert [event_id for event_id, _, _ in everything] == list(range(1, len(everything) + 1))
    assert deltas(everything) == expected_words(40)
    assert rest[-1][1] == "done"


def test_a_finished_reply_replays_what_is_left_and_ends(servers, chat):
    first, second = servers
    chat.upstream.configure(tokens=5)
    seen = start_turn_on(first, chat, limit=100)
    message_id = seen[0][2]["message_id"]
    with second.client() as http:
        response = http.get(f"/chat/messages/{message_id}/stream?last_event_id=3", headers=chat.headers)
    replayed = parse_sse(response.content)
    assert [event_id for event_id, _, _ in replayed] == list(range(4, len(seen) + 1))
    assert deltas(seen[:3] + replayed) == expected_words(5)


def test_a_dropped_stream_that_is_never_resumed_is_saved_complete(servers, chat):
    first, _ = servers
    chat.upstream.configure(tokens=30, token_delay=0.01)
    seen = start_turn_on(first, chat, limit=3)
    reply = Message.objects.get(pk=seen[0][2]["message_id"])
    deadline = time.monotonic() + 10
    while reply.status == "streaming" and time.monotonic() < deadline:
        time.sleep(0.05)
        reply.refresh_from_db()
    assert reply.status == "complete"
    assert reply.content == expected_words(30)


def test_stop_on_the_second_process_ends_a_turn_running_on_the_first(servers, chat):
    first, second = servers
    chat.upstream.configure(tokens=1000, token_delay=0.01)
    with (
        first.client() as http,
        http.stream(
            "POST", "/chat/send", json={"message": "count", "model": "gpt-test"}, headers=chat.headers
        ) as response,
    ):
        seen = read_stream(response, limit=4)
        message_id = seen[0][2]["message_id"]
        with second.client() as other:
            assert other.post(f"/chat/messages/{message_id}/stop", headers=chat.headers).status_code == 202
        rest = read_stream(response)
    assert rest[-1][1] == "done"
    assert rest[-1][2]["finish_reason"] == "stopped"
    reply = Message.objects.get(pk=message_id)
    assert reply.status == "stopped"
    assert 0 < len(reply.content.split()) < 1000
    requests = chat.upstream.wait_for(lambda reqs: reqs and reqs[-1].get("closed_by_client"))
    assert requests[-1]["closed_by_client"] is True


def test_a_killed_servers_streaming_reply_is_repaired_with_its_text(own_servers, chat, settings):
    settings.STREAM_ALIVE_SECONDS = 1
    first, second = own_servers
    # A process's first turn pays one-time costs (an SDK's import, its client's TLS setup) that,
    # on a loaded machine, can outlast this test's 1 s alive mark: pay them before the turn.
    chat.upstream.configure(tokens=2, token_delay=0)
    assert start_turn_on(second, chat, limit=100)[-1][1] == "done"
    chat.upstream.configure(tokens=1000, token_delay=0.01)
    seen = start_turn_on(second, chat, limit=10)  # the connection closes; the turn goes on
    message_id = seen[0][2]["message_id"]
    with first.client() as http:
        assert http.get("/health").status_code == 200  # a serving process sweeps
    time.sleep(0.2)
    os.kill(second.process.pid, signal.SIGKILL)
    second.process.wait(timeout=5)
    # The survivor repairs it by itself once its alive mark lapses (1 s here).
    deadline = time.monotonic() + 3
    while Message.objects.get(pk=message_id).status == "streaming" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert streams_repair() == []  # nothing is left to repair
    reply = Message.objects.get(pk=message_id)
    assert reply.status == "failed"
    assert reply.error_code == "interrupted"
    assert reply.content.startswith(deltas(seen))
    # The other process still serves, and resuming the dead reply ends cleanly.
    with first.client() as http:
        replay = parse_sse(http.get(f"/chat/messages/{message_id}/stream", headers=chat.headers).content)
    assert replay[-1][1] == "error"
