"""Share links: anyone with the link reads the conversation, nothing about its owner; revoke ends it."""

from __future__ import annotations

import pytest

from chats.models import Conversation, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(alice) -> Conversation:
    conversation = Conversation.objects.create(owner=alice, title="Recipe")
    Message.objects.create(conversation=conversation, role="user", content="Pancakes?")
    Message.objects.create(conversation=conversation, role="assistant", content="Flour, eggs, milk.")
    return conversation


def test_a_shared_conversation_is_readable_without_login(alice_client, api_client, conversation):
    response = alice_client.post(f"/chat/conversations/{conversation.pk}/share")
    assert response.status_code == 201
    token, url = response.json()["token"], response.json()["url"]
    assert url.endswith(f"/chat/shared/{token}")
    shared = api_client.get(f"/chat/shared/{token}")
    assert shared.status_code == 200
    body = shared.json()
    assert body["title"] == "Recipe"
    assert [m["content"] for m in body["messages"]] == ["Pancakes?", "Flour, eggs, milk."]
    assert "alice" not in shared.content.decode()
    assert "owner" not in body


def test_sharing_twice_keeps_the_same_link(alice_client, conversation):
    first = alice_client.post(f"/chat/conversations/{conversation.pk}/share").json()["token"]
    second = alice_client.post(f"/chat/conversations/{conversation.pk}/share").json()["token"]
    assert first == second


def test_a_revoked_link_is_gone(alice_client, api_client, conversation):
    token = alice_client.post(f"/chat/conversations/{conversation.pk}/share").json()["token"]
    assert alice_client.delete(f"/chat/conversations/{conversation.pk}/share").status_code == 204
    assert api_client.get(f"/chat/shared/{token}").status_code == 404


def test_an_unknown_link_is_404(api_client):
    assert api_client.get("/chat/shared/nope").status_code == 404


def test_a_link_with_a_null_character_is_404_not_a_server_error(api_client):
    assert api_client.get("/chat/shared/no%00pe").status_code == 404
