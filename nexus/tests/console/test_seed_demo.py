"""`manage.py seed --demo`: a demo user, global templates and a sample conversation, once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from chats.models import Conversation, Message, Template

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed", *args, stdout=out)
    return out.getvalue()


def test_the_demo_user_gets_templates_and_a_sample_conversation(monkeypatch):
    monkeypatch.setenv("DEMO_USER_PASSWORD", "Demo-Password-For-Tests-1")
    output = seed("--demo")
    demo = User.objects.get(email="demo@example.com")
    assert demo.check_password("Demo-Password-For-Tests-1")
    names = set(Template.objects.filter(owner__isnull=True, is_public=True).values_list("name", flat=True))
    assert {"Translator", "Summarizer", "Code reviewer"} <= names
    conversation = Conversation.objects.get(owner=demo)
    assert list(Message.objects.filter(conversation=conversation).values_list("role", flat=True)) == [
        "user",
        "assistant",
    ]
    assert "Seeding done." in output


def test_seeding_twice_changes_nothing(monkeypatch):
    monkeypatch.setenv("DEMO_USER_PASSWORD", "Demo-Password-For-Tests-1")
    seed("--demo")
    Template.objects.filter(name="Translator").update(system_prompt="Edited by the operator.")
    counts = (
        User.objects.count(),
        Template.objects.count(),
        Conversation.objects.count(),
        Message.objects.count(),
    )
    output = seed("--demo")
    assert (
        User.objects.count(),
        Template.objects.count(),
        Conversation.objects.count(),
        Message.objects.count(),
    ) == counts
    assert Template.objects.get(name="Translator").system_prompt == "Edited by the operator."
    assert "left as it is" in output


def test_without_demo_no_demo_data_is_added():
    seed()
    assert not User.objects.filter(email="demo@example.com").exists()
    assert not Template.objects.exists()
    assert not Conversation.objects.exists()
