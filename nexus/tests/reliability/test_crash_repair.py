"""`kill -9` of the process running a turn: the reply is repaired by liveness, not age, by
whichever process is up (the survivor, or the restarted one) without any command: saved
`failed` (`interrupted`) with the text it streamed, charged for it once, its reservation
released.
"""

from __future__ import annotations

import os
import signal
import time
from decimal import Decimal

import httpx
import pytest
from django_redis import get_redis_connection

from accounts.services import api_key_create
from billing.models import QuotaCounter, Reservation, UsageRecord
from chats import recovery
from chats.models import Message
from chats.recovery import turns_repair
from chats.streams import alive_key, stream_key_for
from llm.tokens import estimate_tokens
from nexus.tests.reliability.conftest import make_user
from nexus.tests.reliability.test_faults import sse_events, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

ALIVE_SECONDS = 2.0
ENV = {"STREAM_ALIVE_SECONDS": str(ALIVE_SECONDS)}


@pytest.fixture
def payer(fake_upstream, settings):
    settings.STREAM_ALIVE_SECONDS = ALIVE_SECONDS
    fake_upstream.make_model(
        kind="openai",
        name="gpt-slow",
        max_output_tokens=512,
        input_price_per_million=Decimal("1.00"),
        output_price_per_million=Decimal("2.00"),
    )
    fake_upstream.configure(tokens=400, token_delay=0.05)  # 20 s of reply: it is killed long before
    user = make_user("crash@example.com")
    _, secret = api_key_create(user=user, name="crash")
    return {"user": user, "headers": {"Authorization": f"Bearer {secret}"}}


def stream_some(server, payer, *, deltas: int) -> tuple[int, str]:
    """Starts a turn on `server` and reads its first `deltas` deltas; the turn goes on."""
    raw = b""
    body = {"message": "Count", "model": "gpt-slow"}
    with (
        server.client() as client,
        client.stream("POST", "/chat/send", json=body, headers=payer["headers"]) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_raw():
            raw += chunk
            if raw.count(b"event: delta") >= deltas and raw.endswith(b"\n\n"):
                break
    events = sse_events(raw.decode())
    return events[0][1]["message_id"], "".join(data["content"] for name, data in events if name == "delta")


def kill(server) -> float:
    time.sleep(0.1)  # what the client saw is in the Redis buffer (flushed every 20 ms)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=5)
    return time.monotonic()


def assert_repaired_and_charged_once(message_id: int, seen: str, user) -> None:
    reply = Message.objects.get(pk=message_id)
    assert (reply.status, reply.error_code) == ("failed", "interrupted")
    assert reply.content.startswith(seen) and len(reply.content) >= len(seen)
    record = UsageRecord.objects.get(user=user)  # exactly one
    assert record.outcome == "failed"
    assert record.tokens_estimated
    assert record.output_tokens == estimate_tokens(reply.content) > 0
    assert reply.output_tokens == record.output_tokens
    assert record.cost > 0
    assert not Reservation.objects.filter(user=user).exists()
    counters = QuotaCounter.objects.filter(user=user)
    assert counters.count() == 2  # the user's and the key's
    assert all((counter.reserved, counter.used) == (0, record.cost) for counter in counters)


def test_a_killed_processs_reply_is_repaired_by_the_survivor_within_the_alive_time(start_server, payer):
    running, survivor = start_server(**ENV), start_server(**ENV)
    with survivor.client() as client:
        assert client.get("/health").status_code == 200
    message_id, seen = stream_some(running, payer, deltas=10)
    killed_at = kill(running)
    assert Message.objects.get(pk=message_id).status == "streaming"

    # The survivor and this test process race to repair it: it is repaired once.
    def repaired() -> bool:
        turns_repair()
        return Message.objects.get(pk=message_id).status != "streaming"

    assert wait_until(repaired, timeout=3 * ALIVE_SECONDS)
    took = time.monotonic() - killed_at
    # The alive mark lapses within its lifetime; a sweep follows within a third of it.
    assert took < ALIVE_SECONDS * 4 / 3 + 0.5, took
    time.sleep(ALIVE_SECONDS / 2)  # let every sweep of the survivor run once more
    assert_repaired_and_charged_once(message_id, seen, payer["user"])

    # A reader on the survivor gets the reply's end, not a wait.
    with survivor.client() as client:
        response = client.get(f"/chat/messages/{message_id}/stream", headers=payer["headers"])
    events = sse_events(response.text)
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["code"] == "interrupted"


def test_a_restarted_process_repairs_a_lapsed_reply_at_once(start_server, payer):
    running = start_server(**ENV)
    message_id, seen = stream_some(running, payer, deltas=10)
    kill(running)
    redis = get_redis_connection("default")
    assert wait_until(
        lambda: not redis.exists(alive_key(stream_key_for(message_id))), timeout=ALIVE_SECONDS + 1
    )
    assert Message.objects.get(pk=message_id).status == "streaming"

    restarted = start_server(**ENV)
    started = time.monotonic()
    with httpx.Client(base_url=restarted.url, timeout=10) as client:
        assert client.get("/health").status_code == 200
    assert wait_until(lambda: Message.objects.get(pk=message_id).status != "streaming", timeout=2)
    assert time.monotonic() - started < 1.5
    assert_repaired_and_charged_once(message_id, seen, payer["user"])


async def test_requests_of_djangos_test_client_do_not_make_the_test_process_repair_turns(async_client):
    """A test process that also calls Nexus in process must not race the servers it tests to
    repair their turns (it would, without their alive marks' view, mark live replies failed)."""
    assert (await async_client.get("/health")).status_code == 200
    assert (await async_client.post("/auth/login", {}, content_type="application/json")).status_code == 400
    assert not recovery._serving
