"""Writes of the chats app: conversations, messages, templates and sharing.

The AI turn itself lives in chats.turn; these are the plain writes around it.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from accounts.models import User
from chats.models import Conversation, Message, MessageStatus, Template
from chats.notifications import notify_user
from nexus.lib.errors import ApiError

TITLE_LENGTH = 60


def title_from_message(text: str) -> str:
    """A first title from the first message: its first line, cut at a word near 60 characters."""
    line = " ".join(text.split())
    if len(line) <= TITLE_LENGTH:
        return line or "New conversation"
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0] or line[:TITLE_LENGTH]
    return cut + "…"


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "model": conversation.model,
        "pinned": conversation.pinned,
        "archived": conversation.archived,
        "updated_at": conversation.updated_at.isoformat(),
    }


@transaction.atomic
def conversation_create(
    *,
    user: User,
    title: str = "",
    model: str = "",
    template: Template | None = None,
    system_prompt: str = "",
    parameters: dict[str, Any] | None = None,
) -> Conversation:
    conversation = Conversation.objects.create(
        owner=user,
        title=title,
        model=model,
        template=template,
        system_prompt=system_prompt,
        parameters=parameters or {},
    )
    notify_user(user_id=user.pk, event="conversation.created", payload=conversation_payload(conversation))
    return conversation


@transaction.atomic
def conversation_update(*, conversation: Conversation, **changes: Any) -> Conversation:
    allowed = {"title", "model", "system_prompt", "parameters", "pinned", "archived"}
    for name, value in changes.items():
        if name not in allowed:
            raise ValueError(f"{name} cannot be changed")
        setattr(conversation, name, value)
    conversation.updated_at = timezone.now()
    conversation.save(update_fields=[*changes, "updated_at"])
    notify_user(
        user_id=conversation.owner_id,
        event="conversation.updated",
        payload=conversation_payload(conversation),
    )
    return conversation


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    owner_id, conversation_id = conversation.owner_id, conversation.pk
    conversation.delete()
    notify_user(user_id=owner_id, event="conversation.deleted", payload={"id": conversation_id})


@transaction.atomic
def conversation_share(*, conversation: Conversation) -> str:
    """Gives the conversation a share token (the same one if it already has one)."""
    if conversation.share_token is None:
        conversation.share_token = secrets.token_urlsafe(24)
        conversation.save(update_fields=["share_token"])
    return conversation.share_token


@transaction.atomic
def conversation_unshare(*, conversation: Conversation) -> None:
    conversation.share_token = None
    conversation.save(update_fields=["share_token"])


def conversation_touch(*, conversation_id: int) -> None:
    Conversation.objects.filter(pk=conversation_id).update(updated_at=timezone.now())


def conversation_check_idle(*, conversation_id: int, lock: bool = False) -> None:
    """409 `turn_in_progress` while a reply of the conversation is being written.

    With `lock` (inside a transaction), the conversation's row stays locked until it ends, so
    that of simultaneous sends, regenerates and edits one writes and the others get the 409,
    on any process.
    """
    if lock:
        Conversation.objects.select_for_update().filter(pk=conversation_id).values_list("pk").first()
    if Message.objects.filter(conversation_id=conversation_id, status=MessageStatus.STREAMING).exists():
        raise ApiError(
            "A reply in this conversation is still being written: wait for it, or stop it.",
            code="turn_in_progress",
            status_code=409,
        )


@transaction.atomic
def message_delete(*, message: Message) -> None:
    """Deletes one message; the messages that followed it follow its parent now, so a
    branch loses that message only (an edit is a new message: chats.turn)."""
    if message.status == "streaming":
        raise ApiError(
            "This reply is still being written; stop it first.", code="turn_in_progress", status_code=409
        )
    Message.objects.filter(parent=message).update(parent_id=message.parent_id)
    message.delete()


def _may_change_template(user: User, template: Template) -> bool:
    if template.owner_id is None:
        return user.has_perm("chats.change_template")
    return template.owner_id == user.pk


@transaction.atomic
def template_create(*, user: User, is_global: bool = False, **fields: Any) -> Template:
    if is_global and not user.has_perm("chats.add_template"):
        raise PermissionDenied("Only admins may create global templates.")
    return Template.objects.create(owner=None if is_global else user, **fields)


@transaction.atomic
def template_update(*, user: User, template: Template, **changes: Any) -> Template:
    if not _may_change_template(user, template):
        raise PermissionDenied("Only its owner may change this template.")
    for name, value in changes.items():
        setattr(template, name, value)
    template.save()
    return template


@transaction.atomic
def template_delete(*, user: User, template: Template) -> None:
    if not _may_change_template(user, template):
        raise PermissionDenied("Only its owner may delete this template.")
    template.delete()
