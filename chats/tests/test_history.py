"""GET /chat/history: the caller's conversations newest first, each with its messages."""

from __future__ import annotations

import pytest

from chats.models import Conversation, Message

pytestmark = pytest.mark.django_db


def fill(user, conversations: int, messages: int) -> None:
    for number in range(conversations):
        conversation = Conversation.objects.create(owner=user, title=f"c{number}")
        Message.objects.bulk_create(
            Message(
                conversation=conversation, role="user" if i % 2 == 0 else "assistant", content=f"{number}.{i}"
            )
            for i in range(messages)
        )


def test_history_holds_the_messages_in_order(alice, alice_client):
    fill(alice, 1, 3)
    body = alice_client.get("/chat/history").json()
    assert body["count"] == 1
    conversation = body["results"][0]
    assert set(conversation) == {"id", "title", "model", "created_at", "updated_at", "messages"}
    assert [m["content"] for m in conversation["messages"]] == ["0.0", "0.1", "0.2"]
    assert set(conversation["messages"][0]) == {
        "id",
        "parent_id",
        "role",
        "content",
        "reasoning",
        "attachments",
        "status",
        "created_at",
    }


def test_history_pages(alice, alice_client):
    fill(alice, 5, 1)
    first = alice_client.get("/chat/history?page_size=2").json()
    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert first["next"] is not None and first["previous"] is None
    last = alice_client.get("/chat/history?page_size=2&page=3").json()
    assert len(last["results"]) == 1 and last["next"] is None


def test_page_size_is_capped(alice, alice_client):
    fill(alice, 3, 0)
    assert len(alice_client.get("/chat/history?page_size=100000").json()["results"]) == 3


@pytest.mark.parametrize("page_size", [5, 50])
def test_history_costs_the_same_few_queries_whatever_the_page_size(
    alice, alice_client, django_assert_max_num_queries, page_size
):
    fill(alice, 60, 4)
    with django_assert_max_num_queries(3):
        response = alice_client.get(f"/chat/history?page_size={page_size}")
    assert len(response.json()["results"]) == page_size


def test_history_reads_exactly_as_its_serializer_renders(alice, alice_client):
    from chats.serializers import HistorySerializer

    fill(alice, 2, 3)
    Message.objects.filter(content="0.1").update(status="failed")
    expected = HistorySerializer(
        Conversation.objects.filter(owner=alice).order_by("-updated_at", "-id"), many=True
    ).data
    assert alice_client.get("/chat/history").json()["results"] == [dict(entry) for entry in expected]
