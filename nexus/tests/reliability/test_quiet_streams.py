"""Streams that stay quiet, on live servers: idle sockets, slow first tokens, a killed writer,
and what a finished turn leaves in memory.

redis-py 8 gives every connection a 5 s socket timeout, so a blocking read that waits
longer (the channel layer's pop, a resume's XREAD BLOCK) once died with TimeoutError.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from typing import Any

import httpx
import pytest
from django_redis import get_redis_connection
from websockets.sync.client import connect

from chats.models import Message
from chats.streams import StreamHub, buffer_key
from nexus.tests.reliability.conftest import jwt_for, make_user
from nexus.tests.reliability.test_faults import sse_events, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

IDLE_SECONDS = 30
FIRST_TOKEN_SECONDS = 12
ALIVE_SECONDS = 2
THINK = {"message": "Think hard", "model": "gpt-slow"}


@pytest.fixture
def chatter(fake_upstream):
    fake_upstream.make_model(
        kind="openai",
        name="gpt-slow",
        max_output_tokens=64,
        provider_fields={"first_token_timeout": 20.0, "idle_timeout": 20.0, "total_timeout": 60.0},
    )
    fake_upstream.configure(reply="worth the wait")
    user = make_user("quiet@example.com")
    return {"Authorization": f"Bearer {jwt_for(user)}"}


def _ws_url(server: Any, headers: dict[str, str]) -> str:
    token = headers["Authorization"].split(" ", 1)[1]
    return f"ws://127.0.0.1:{server.port}/ws/chat?token={token}"


def _turn_frames(socket: Any, timeout: float) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = json.loads(socket.recv(timeout=deadline - time.monotonic()))
        if frame["type"] in ("start", "delta", "done", "error"):
            frames.append(frame)
            if frame["type"] in ("done", "error"):
                return frames
    raise AssertionError(f"no end within {timeout} s: {frames}")


def _text(events: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(data["content"] for name, data in events if name == "delta")


def _buffered(reply: Message) -> bool:
    """Whether the turn's events are in Redis, where the other process reads them."""
    return bool(get_redis_connection("default").exists(buffer_key(f"message:{reply.pk}")))


def _streaming_reply() -> Message | None:
    return Message.objects.filter(role="assistant", status="streaming").order_by("-id").first()


def test_a_websocket_idle_for_30_seconds_still_runs_a_turn(start_server, chatter):
    server = start_server()
    with connect(_ws_url(server, chatter), open_timeout=5) as socket:
        time.sleep(IDLE_SECONDS)
        socket.send(json.dumps({"type": "send", "message": "Still there?", "model": "gpt-slow"}))
        frames = _turn_frames(socket, timeout=10)
    assert frames[-1]["type"] == "done", frames
    assert "".join(frame["content"] for frame in frames if frame["type"] == "delta") == "worth the wait"


def test_a_first_token_after_12_seconds_reaches_the_writer_and_a_resume_on_the_other_process(
    start_server, chatter, fake_upstream
):
    fake_upstream.configure(reply="worth the wait", first_token_delay=FIRST_TOKEN_SECONDS)
    writer, other = start_server(), start_server()
    results: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    def send() -> None:
        with httpx.Client(base_url=writer.url, timeout=40) as client:
            response = client.post(
                "/chat/send", json={"message": "Think hard", "model": "gpt-slow"}, headers=chatter
            )
        results["writer"] = sse_events(response.text)

    sending = threading.Thread(target=send)
    sending.start()
    assert wait_until(lambda: _streaming_reply() is not None, timeout=5)
    reply = _streaming_reply()
    assert reply is not None
    after_start = {**chatter, "Last-Event-ID": "1"}
    assert wait_until(lambda: _buffered(reply), timeout=5)
    with httpx.Client(base_url=other.url, timeout=40) as client:
        resumed = client.get(f"/chat/messages/{reply.pk}/stream", headers=after_start)
    sending.join(timeout=40)

    assert resumed.status_code == 200, resumed.text
    events = sse_events(resumed.text)
    assert events[-1][0] == "done", events
    assert _text(events) == "worth the wait"
    assert results["writer"][-1][0] == "done", results["writer"]
    assert _text(results["writer"]) == "worth the wait"


def test_a_resume_ends_interrupted_within_the_alive_period_once_the_writer_is_killed(
    start_server, chatter, fake_upstream
):
    fake_upstream.configure(reply="never finished", first_token_delay=30)
    alive = {"STREAM_ALIVE_SECONDS": str(ALIVE_SECONDS)}
    writer, other = start_server(**alive), start_server(**alive)

    def send() -> None:
        # The connection dies with the writer's process: that is the point, not a failure.
        with httpx.Client(base_url=writer.url, timeout=40) as client, contextlib.suppress(httpx.HTTPError):
            client.post("/chat/send", json=THINK, headers=chatter)

    threading.Thread(target=send, daemon=True).start()
    assert wait_until(lambda: _streaming_reply() is not None, timeout=5)
    reply = _streaming_reply()
    assert reply is not None
    after_start = {**chatter, "Last-Event-ID": "1"}
    assert wait_until(lambda: _buffered(reply), timeout=5)

    ended: dict[str, Any] = {}

    def resume() -> None:
        with httpx.Client(base_url=other.url, timeout=40) as client:
            response = client.get(f"/chat/messages/{reply.pk}/stream", headers=after_start)
        ended["at"], ended["events"] = time.monotonic(), sse_events(response.text)

    resuming = threading.Thread(target=resume)
    resuming.start()
    time.sleep(ALIVE_SECONDS * 2)  # quiet, and alive: the resume must still be waiting
    assert "at" not in ended, ended
    writer.process.kill()
    writer.process.wait(timeout=5)
    killed = time.monotonic()
    resuming.join(timeout=20)

    assert ended["events"][-1][0] == "error", ended["events"]
    assert ended["events"][-1][1]["error"]["code"] == "interrupted"
    # The mark lapses at most STREAM_ALIVE_SECONDS after the last beat; the reader looks at once.
    assert ended["at"] - killed < ALIVE_SECONDS + 1.0


# --- memory of finished turns, in-process ---------------------------------------------------


async def _publish_turn(hub: StreamHub, key: str) -> None:
    hub.publish(key, "start", {"message_id": None})
    for word in ("a", "b", "c"):
        hub.publish(key, "delta", {"content": word})
        await asyncio.sleep(0)
    hub.publish(key, "done", {"finish_reason": "stop"})
    hub.release(key)


async def _read_all(hub: StreamHub, key: str, after: int = 0) -> list[str]:
    return [item.event async for item in hub.subscribe(key, after)]


async def test_a_finished_gateway_stream_leaves_memory_once_its_readers_have_it(settings):
    settings.STREAM_MEMORY_SECONDS = 60
    hub = StreamHub()
    hub.open("gateway:one", mirrored=False)
    readers = [asyncio.create_task(_read_all(hub, "gateway:one")) for _ in range(2)]
    await asyncio.sleep(0)
    await _publish_turn(hub, "gateway:one")
    assert await asyncio.gather(*readers) == [["start", "delta", "delta", "delta", "done"]] * 2
    assert not hub.has("gateway:one")


async def test_a_gateway_stream_finished_before_its_reader_came_waits_for_it(settings):
    settings.STREAM_MEMORY_SECONDS = 60
    hub = StreamHub()
    hub.open("gateway:two", mirrored=False)
    await _publish_turn(hub, "gateway:two")
    assert hub.has("gateway:two")
    assert await _read_all(hub, "gateway:two") == ["start", "delta", "delta", "delta", "done"]
    assert not hub.has("gateway:two")


async def test_a_resumable_stream_stays_in_memory_a_bounded_time_then_redis_serves_it(settings):
    settings.STREAM_MEMORY_SECONDS = 0.2
    hub = StreamHub()
    hub.open("message:bounded")
    await _publish_turn(hub, "message:bounded")
    await hub.drain("message:bounded")
    assert hub.has("message:bounded")
    await asyncio.sleep(0.4)
    assert not hub.has("message:bounded")
    assert await _read_all(hub, "message:bounded", after=2) == ["delta", "delta", "done"]
    client = hub.redis()
    assert client is not None
    await client.aclose()


async def test_without_redis_a_resumable_stream_stays_in_memory_for_the_buffer_period(settings):
    settings.REDIS_URL = ""
    settings.STREAM_MEMORY_SECONDS = 0.2
    hub = StreamHub()
    hub.open("message:embedded")
    await _publish_turn(hub, "message:embedded")
    await asyncio.sleep(0.4)
    assert hub.has("message:embedded")
    assert await _read_all(hub, "message:embedded") == ["start", "delta", "delta", "delta", "done"]
