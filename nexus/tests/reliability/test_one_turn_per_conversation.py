"""One turn per conversation at a time, over two server processes: simultaneous regenerate
clicks, sends and edits run one paid turn, the others get 409 `turn_in_progress`."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from billing.models import Reservation, UsageRecord
from chats.models import Conversation, Message, MessageStatus
from nexus.tests.reliability.conftest import jwt_for, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


@pytest.fixture
def setup(start_server, fake_upstream, settings):
    fake_upstream.make_model(kind="openai", name="gpt-test", input_price_per_million=Decimal("1"))
    user = make_user("clicker@example.com")
    conversation = Conversation.objects.create(owner=user, title="Owls", model="gpt-test")
    question = Message.objects.create(conversation=conversation, role="user", content="Tell me about owls.")
    reply = Message.objects.create(conversation=conversation, role="assistant", content="Owls hoot.")
    servers = [start_server(), start_server()]
    return {
        "urls": [server.url for server in servers],
        "headers": {"Authorization": f"Bearer {jwt_for(user)}"},
        "conversation": conversation,
        "question": question,
        "reply": reply,
        "upstream": fake_upstream,
    }


def at_once(setup, calls: list[tuple[str, str, dict | None]]) -> list[httpx.Response]:
    """The calls (method, path, body) released together, alternating between the servers."""
    barrier = threading.Barrier(len(calls))

    def call(index: int) -> httpx.Response:
        method, path, body = calls[index]
        with httpx.Client(base_url=setup["urls"][index % 2], timeout=30) as client:
            barrier.wait(timeout=30)
            with client.stream(method, path, json=body, headers=setup["headers"]) as response:
                response.read()
                return response

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(call, range(len(calls))))


def test_ten_simultaneous_regenerates_run_one_turn(setup):
    setup["upstream"].configure(reply="Owls are silent fliers.", token_delay=0.05)
    path = f"/chat/messages/{setup['reply'].pk}/regenerate"
    responses = at_once(setup, [("POST", path, None)] * 10)

    # One runs. The others are refused: 409 while its reply is written (the reply they asked
    # to regenerate stays, beside the new one).
    assert sorted(response.status_code for response in responses)[0] == 200
    refused = [response for response in responses if response.status_code != 200]
    assert len(refused) == 9
    assert {(r.status_code, r.json()["error"]["code"]) for r in refused} <= {
        (409, "turn_in_progress"),
        (404, "not_found"),
    }
    assert len(setup["upstream"].requests()) == 1
    assert UsageRecord.objects.count() == 1
    assert not Reservation.objects.exists()  # the refused ones gave theirs back, the turn settled
    roles = list(setup["conversation"].messages.values_list("role", "status"))
    assert roles == [
        ("user", MessageStatus.COMPLETE),
        ("assistant", MessageStatus.COMPLETE),
        ("assistant", MessageStatus.COMPLETE),
    ]


def test_a_send_and_an_edit_while_a_reply_is_written_are_refused(setup):
    setup["upstream"].configure(reply="word " * 40, token_delay=0.05)
    conversation = setup["conversation"]
    with (
        httpx.Client(base_url=setup["urls"][0], timeout=30) as client,
        client.stream(
            "POST",
            "/chat/send",
            json={"conversation_id": conversation.pk, "message": "And bats?"},
            headers=setup["headers"],
        ) as streaming,
    ):
        assert streaming.status_code == 200
        lines = streaming.iter_lines()
        next(lines)  # the turn has begun
        with httpx.Client(base_url=setup["urls"][1], timeout=30) as other:
            send = other.post(
                "/chat/send",
                json={"conversation_id": conversation.pk, "message": "Meanwhile?"},
                headers=setup["headers"],
            )
            edit = other.patch(
                f"/chat/messages/{setup['question'].pk}",
                json={"content": "Tell me about bats."},
                headers=setup["headers"],
            )
        rest = list(lines)
    assert any("event: done" in line for line in rest)
    assert (send.status_code, send.json()["error"]["code"]) == (409, "turn_in_progress")
    assert (edit.status_code, edit.json()["error"]["code"]) == (409, "turn_in_progress")
    assert Message.objects.get(pk=setup["question"].pk).content == "Tell me about owls."
    assert list(conversation.messages.values_list("role", flat=True)) == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert UsageRecord.objects.count() == 1
