"""Seed data of the chats app, with `--demo`: global templates and a sample conversation.

Idempotent: a template that exists under its name (global, no owner) is left as an
operator set it, and the demo user gets the sample conversation once.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import transaction

from accounts.models import User
from accounts.seed import DEMO_EMAIL
from chats.models import Conversation, Message, MessageRole, MessageStatus, Template
from nexus.lib import runtime

SAMPLE_TITLE = "Welcome to Nexus"

TEMPLATES = (
    {
        "name": "Translator",
        "description": "Translates what you write into English, keeping the tone.",
        "system_prompt": "Translate the user's text into English. Keep its tone and formatting. "
        "Answer with the translation only.",
        "parameters": {"temperature": 0.2},
    },
    {
        "name": "Summarizer",
        "description": "Summarizes a text in a few bullet points.",
        "system_prompt": "Summarize the user's text in at most five short bullet points.",
        "parameters": {"temperature": 0.3},
    },
    {
        "name": "Code reviewer",
        "description": "Reviews code for bugs, clarity and tests.",
        "system_prompt": "You review code. Point out bugs first, then unclear names and missing tests. "
        "Be brief and concrete.",
        "parameters": {"temperature": 0.2},
    },
)

SAMPLE_EXCHANGE = (
    (MessageRole.USER, "What can I do with Nexus?"),
    (
        MessageRole.ASSISTANT,
        "Chat with any model your operator has set up, keep every conversation, start from a "
        "template, share a conversation by link, and call the same models from scripts with an "
        "API key through any OpenAI SDK.",
    ),
)


def _seed_templates() -> Iterator[str]:
    existing = set(Template.objects.filter(owner__isnull=True).values_list("name", flat=True))
    for template in TEMPLATES:
        if template["name"] in existing:
            yield f"chats: template {template['name']} exists, left as it is."
            continue
        Template.objects.create(owner=None, is_public=True, **template)
        yield f"chats: template {template['name']} created."


@transaction.atomic
def _seed_sample_conversation() -> Iterator[str]:
    user = User.objects.filter(email=DEMO_EMAIL).first()
    if user is None:
        yield "chats: no demo user, no sample conversation."
        return
    if Conversation.objects.filter(owner=user, title=SAMPLE_TITLE).exists():
        yield "chats: the demo user's sample conversation exists, left as it is."
        return
    model = runtime.default_model()
    conversation = Conversation.objects.create(owner=user, title=SAMPLE_TITLE, model=model)
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            role=role,
            content=content,
            status=MessageStatus.COMPLETE,
            model=model if role == MessageRole.ASSISTANT else "",
        )
        for role, content in SAMPLE_EXCHANGE
    )
    yield f"chats: sample conversation {SAMPLE_TITLE!r} created for {DEMO_EMAIL}."


def seed(*, demo: bool = False) -> Iterator[str]:
    if demo:
        yield from _seed_templates()
        yield from _seed_sample_conversation()
