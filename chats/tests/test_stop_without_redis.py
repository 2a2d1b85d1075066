"""Stopping a reply another process writes needs Redis to tell that process."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from chats.models import Conversation, Message

pytestmark = pytest.mark.django_db


class UnreachableRedis:
    def publish(self, channel: str, message: str) -> int:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_stopping_a_reply_elsewhere_while_redis_is_down_is_503_and_changes_nothing(
    alice, alice_client, monkeypatch
):
    # Before, the failed publish escaped as a 500.
    monkeypatch.setattr("chats.runner.get_redis_connection", lambda alias: UnreachableRedis())
    conversation = Conversation.objects.create(owner=alice, title="t")
    reply = Message.objects.create(
        conversation=conversation, role="assistant", content="half", status="streaming"
    )
    response = alice_client.post(f"/chat/messages/{reply.pk}/stop")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    reply.refresh_from_db()
    assert (reply.status, reply.content) == ("streaming", "half")
