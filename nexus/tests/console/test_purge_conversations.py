"""`manage.py purge_conversations --older-than 365d [--dry-run]`: old conversations go, new stay."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import AuditEvent
from chats.models import Conversation, Message
from nexus.tests.console.conftest import make_user

pytestmark = pytest.mark.django_db


def conversation(owner, *, age_days: int, streaming: bool = False) -> Conversation:
    when = timezone.now() - timedelta(days=age_days)
    item = Conversation.objects.create(owner=owner, title=f"{age_days} days old", updated_at=when)
    Message.objects.create(conversation=item, role="user", content="hello")
    Message.objects.create(
        conversation=item, role="assistant", content="hi", status="streaming" if streaming else "complete"
    )
    return item


@pytest.fixture
def conversations():
    owner = make_user("history@example.com")
    return {
        "ancient": conversation(owner, age_days=800),
        "old": conversation(owner, age_days=400),
        "recent": conversation(owner, age_days=30),
        "stuck": conversation(owner, age_days=500, streaming=True),
    }


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_conversations", *args, stdout=out)
    return out.getvalue()


def test_conversations_older_than_the_cutoff_are_deleted_with_their_messages(conversations):
    output = purge("--older-than", "365d", "--batch-size", "1")
    assert "2 conversations" in output and "deleted" in output
    assert "2/2 deleted" in output  # progress, batch by batch
    left = set(Conversation.objects.values_list("title", flat=True))
    assert left == {"30 days old", "500 days old"}
    assert not Message.objects.filter(conversation_id=conversations["old"].pk).exists()


def test_a_dry_run_counts_and_deletes_nothing(conversations):
    output = purge("--older-than", "365d", "--dry-run")
    assert "2 conversations" in output and "would be deleted" in output
    assert Conversation.objects.count() == 4
    assert Message.objects.count() == 8
    assert not AuditEvent.objects.filter(action="conversations.purged").exists()


def test_a_reply_still_streaming_keeps_its_conversation(conversations):
    purge("--older-than", "52w")
    assert Conversation.objects.filter(pk=conversations["stuck"].pk).exists()


def test_the_purge_is_in_the_audit_trail(conversations):
    purge("--older-than", "365d")
    event = AuditEvent.objects.get(action="conversations.purged")
    assert event.metadata["count"] == 2
    assert "--older-than 365d" in event.metadata["reason"]


@pytest.mark.parametrize("age", ["365", "a year", "0d", "10m", "-5d"])
def test_an_unreadable_age_is_refused(conversations, age):
    with pytest.raises(CommandError, match="365d"):
        purge(f"--older-than={age}")
    assert Conversation.objects.count() == 4
