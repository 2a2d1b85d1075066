"""Editing and deleting messages."""

from __future__ import annotations

import pytest

from chats.models import Conversation, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def exchange(alice):
    conversation = Conversation.objects.create(owner=alice, title="t")
    first = Message.objects.create(conversation=conversation, role="user", content="2+2?")
    Message.objects.create(conversation=conversation, role="assistant", content="4")
    Message.objects.create(conversation=conversation, role="user", content="and 3+3?")
    Message.objects.create(conversation=conversation, role="assistant", content="6")
    return conversation, first


def test_an_assistant_message_cannot_be_edited(alice_client, exchange):
    conversation, _ = exchange
    reply = conversation.messages.get(content="4")
    response = alice_client.patch(f"/chat/messages/{reply.pk}", {"content": "5"}, format="json")
    assert response.status_code == 400
    assert conversation.messages.count() == 4


def test_an_empty_edit_is_refused(alice_client, exchange):
    _, first = exchange
    assert alice_client.patch(f"/chat/messages/{first.pk}", {"content": ""}, format="json").status_code == 400


def test_a_message_is_deleted(alice_client, exchange):
    conversation, first = exchange
    assert alice_client.delete(f"/chat/messages/{first.pk}").status_code == 204
    assert conversation.messages.count() == 3


def test_another_users_message_is_not_found(bob_client, exchange):
    _, first = exchange
    assert bob_client.patch(f"/chat/messages/{first.pk}", {"content": "x"}, format="json").status_code == 404
    assert bob_client.delete(f"/chat/messages/{first.pk}").status_code == 404
    assert bob_client.post(f"/chat/messages/{first.pk}/regenerate").status_code == 404
    first.refresh_from_db()
    assert first.content == "2+2?"


def test_stopping_a_reply_no_process_runs_closes_it(alice_client, exchange, settings):
    settings.REDIS_URL = ""  # one process, no Redis: a `streaming` reply not running here is dead
    conversation, _ = exchange
    orphan = Message.objects.create(
        conversation=conversation, role="assistant", content="half", status="streaming"
    )
    assert alice_client.post(f"/chat/messages/{orphan.pk}/stop").status_code == 202
    orphan.refresh_from_db()
    assert (orphan.status, orphan.error_code, orphan.content) == ("failed", "interrupted", "half")
