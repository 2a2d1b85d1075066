"""Conversations: create, list, search, change, delete; never another user's."""

from __future__ import annotations

import pytest

from chats.models import Conversation, Message

pytestmark = pytest.mark.django_db


def make_conversation(user, title="Trip to Kyoto", **fields) -> Conversation:
    return Conversation.objects.create(owner=user, title=title, **fields)


def test_a_conversation_is_created_with_its_settings(alice_client):
    response = alice_client.post(
        "/chat/conversations",
        {"title": "Plans", "system_prompt": "Be brief.", "parameters": {"temperature": 0.2}},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["title"] == "Plans"
    assert body["system_prompt"] == "Be brief."
    assert body["parameters"] == {"temperature": 0.2}
    assert body["shared"] is False


@pytest.mark.parametrize(
    ("parameters", "field"), [({"temperature": 5}, "temperature"), ({"freq": 1}, "freq")]
)
def test_unknown_or_out_of_range_parameters_are_refused(alice_client, parameters, field):
    response = alice_client.post("/chat/conversations", {"parameters": parameters}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]["parameters"]) == {field}
    assert not Conversation.objects.exists()


def test_the_list_is_newest_first_without_messages(alice, alice_client):
    older = make_conversation(alice, "older")
    newer = make_conversation(alice, "newer")
    Conversation.objects.filter(pk=older.pk).update(updated_at=newer.updated_at.replace(year=2000))
    response = alice_client.get("/chat/conversations")
    assert response.status_code == 200
    assert [item["title"] for item in response.json()["results"]] == ["newer", "older"]
    assert "messages" not in response.json()["results"][0]


def test_pinned_conversations_come_first(alice, alice_client):
    make_conversation(alice, "pinned", pinned=True)
    make_conversation(alice, "recent")
    titles = [item["title"] for item in alice_client.get("/chat/conversations").json()["results"]]
    assert titles == ["pinned", "recent"]


def test_search_finds_titles_and_message_text_once(alice, alice_client):
    by_title = make_conversation(alice, "Kyoto temples")
    by_text = make_conversation(alice, "Untitled")
    Message.objects.create(conversation=by_text, role="user", content="What to eat in kyoto?")
    Message.objects.create(conversation=by_text, role="assistant", content="Kyoto has tofu.")
    make_conversation(alice, "Something else")
    results = alice_client.get("/chat/conversations", {"q": "KYOTO"}).json()["results"]
    assert sorted(item["id"] for item in results) == sorted([by_title.pk, by_text.pk])


def test_a_search_with_a_null_character_is_400_not_a_server_error(alice, alice_client):
    make_conversation(alice, "Kyoto temples")
    response = alice_client.get("/chat/conversations", {"q": "Kyo\x00to"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "q"


def test_archived_filter(alice, alice_client):
    make_conversation(alice, "active")
    make_conversation(alice, "old", archived=True)
    assert [c["title"] for c in alice_client.get("/chat/conversations?archived=true").json()["results"]] == [
        "old"
    ]
    assert [c["title"] for c in alice_client.get("/chat/conversations?archived=false").json()["results"]] == [
        "active"
    ]
    assert alice_client.get("/chat/conversations?archived=maybe").status_code == 400


def test_a_conversation_is_renamed_pinned_and_archived(alice, alice_client):
    conversation = make_conversation(alice)
    response = alice_client.patch(
        f"/chat/conversations/{conversation.pk}",
        {"title": "Kyoto, day 2", "pinned": True, "archived": True},
        format="json",
    )
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.title, conversation.pinned, conversation.archived) == ("Kyoto, day 2", True, True)


def test_a_deleted_conversation_takes_its_messages(alice, alice_client):
    conversation = make_conversation(alice)
    Message.objects.create(conversation=conversation, role="user", content="hi")
    assert alice_client.delete(f"/chat/conversations/{conversation.pk}").status_code == 204
    assert not Message.objects.exists()
    assert alice_client.get(f"/chat/conversations/{conversation.pk}").status_code == 404


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"title": "mine now"}),
        ("delete", "", None),
        ("get", "/messages", None),
        ("post", "/share", None),
        ("delete", "/share", None),
    ],
)
def test_another_users_conversation_is_not_found_and_unchanged(alice, bob_client, method, suffix, body):
    conversation = make_conversation(alice)
    response = getattr(bob_client, method)(
        f"/chat/conversations/{conversation.pk}{suffix}", body, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    conversation.refresh_from_db()
    assert conversation.title == "Trip to Kyoto"
    assert conversation.share_token is None


def test_another_users_conversations_are_not_listed(alice, bob_client):
    make_conversation(alice)
    assert bob_client.get("/chat/conversations").json()["count"] == 0
    assert bob_client.get("/chat/history").json()["count"] == 0


def test_anonymous_callers_get_401(api_client):
    assert api_client.get("/chat/conversations").status_code == 401


def test_messages_are_paginated_in_order(alice, alice_client):
    conversation = make_conversation(alice)
    for number in range(5):
        Message.objects.create(conversation=conversation, role="user", content=f"m{number}")
    page = alice_client.get(f"/chat/conversations/{conversation.pk}/messages?page_size=2&page=2").json()
    assert page["count"] == 5
    assert [m["content"] for m in page["results"]] == ["m2", "m3"]


def test_a_page_past_the_end_is_404(alice, alice_client):
    make_conversation(alice)
    assert alice_client.get("/chat/conversations?page=99999999999").status_code == 404
