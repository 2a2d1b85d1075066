"""Reads of the chats app. Every lookup is scoped to its owner: another user's row is a 404."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from rest_framework.exceptions import NotFound

from accounts.models import User
from chats import branches
from chats.models import Conversation, Message, Template


def conversation_list(*, user: User, query: str = "", archived: bool | None = None) -> QuerySet[Conversation]:
    conversations = Conversation.objects.filter(owner=user)
    if archived is not None:
        conversations = conversations.filter(archived=archived)
    if query:
        matching_message = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=query)
        conversations = conversations.filter(Q(title__icontains=query) | Exists(matching_message))
    return conversations.order_by("-pinned", "-updated_at", "-id")


HISTORY_CONVERSATION_FIELDS = ("id", "title", "model", "created_at", "updated_at")
HISTORY_MESSAGE_FIELDS = ("id", "parent_id", "role", "content", "reasoning", "status", "created_at")


def history_list(*, user: User) -> QuerySet[Conversation, dict[str, Any]]:
    """The caller's conversations newest first, as rows; `history_messages` adds their messages.

    Rows, not model instances: a page of history is hundreds of messages, and building and
    serializing an instance for each cost more than the queries.
    """
    return (
        Conversation.objects.filter(owner=user)
        .order_by("-updated_at", "-id")
        .values(*HISTORY_CONVERSATION_FIELDS, "current_leaf_id")
    )


def history_messages(
    *, conversation_ids: list[int], leaves: dict[int, int | None] | None = None
) -> dict[int, list[dict[str, Any]]]:
    """The current branch of each of these conversations in order (`leaves`: their current
    leaf ids, None for the newest message), as rows, by conversation: one query."""
    by_conversation: dict[int, list[dict[str, Any]]] = {pk: [] for pk in conversation_ids}
    rows = (
        Message.objects.filter(conversation_id__in=conversation_ids)
        .order_by("id")
        .values_list("conversation_id", *HISTORY_MESSAGE_FIELDS)
    )
    for conversation_id, *values in rows:
        by_conversation[conversation_id].append(dict(zip(HISTORY_MESSAGE_FIELDS, values, strict=True)))
    for conversation_id, messages in by_conversation.items():
        branch = branches.branch_ids(
            parents={message["id"]: message["parent_id"] for message in messages},
            leaf_id=(leaves or {}).get(conversation_id),
        )
        by_conversation[conversation_id] = [message for message in messages if message["id"] in branch]
    return by_conversation


def conversation_get(*, user: User, conversation_id: int, for_update: bool = False) -> Conversation:
    conversations = Conversation.objects.filter(owner=user)
    if for_update:
        conversations = conversations.select_for_update()
    try:
        return conversations.get(pk=conversation_id)
    except Conversation.DoesNotExist:
        raise NotFound("No such conversation.") from None


def message_list(*, conversation: Conversation, all_branches: bool = False) -> QuerySet[Message]:
    """The current branch, or every message; each with its sibling numbers (chats.branches)."""
    return branches.message_list(conversation=conversation, all_branches=all_branches)


def message_get(*, user: User, message_id: int) -> Message:
    try:
        return Message.objects.select_related("conversation").get(pk=message_id, conversation__owner=user)
    except Message.DoesNotExist:
        raise NotFound("No such message.") from None


def shared_conversation_get(*, token: str) -> Conversation:
    if "\x00" in token:  # no token holds one, and PostgreSQL refuses it in a query
        raise NotFound("This link does not exist or was revoked.")
    try:
        return Conversation.objects.prefetch_related(
            Prefetch("messages", queryset=Message.objects.order_by("id"))
        ).get(share_token=token)
    except Conversation.DoesNotExist:
        raise NotFound("This link does not exist or was revoked.") from None


def template_list(*, user: User) -> QuerySet[Template]:
    """The caller's own templates, the public ones and the global ones."""
    return Template.objects.filter(Q(owner=user) | Q(is_public=True) | Q(owner__isnull=True))


def template_get(*, user: User, template_id: int) -> Template:
    try:
        return template_list(user=user).get(pk=template_id)
    except Template.DoesNotExist:
        raise NotFound("No such template.") from None
