"""Branches: a conversation is a tree of messages, shown and continued one branch at a time.

Every message follows its `parent`. A regenerated reply is a sibling of the reply it
replaces (both answer the same message), an edited user message a sibling of the message
it edits, so nothing said is ever deleted. The current branch runs from a root to the
conversation's `current_leaf`; null means the newest message, which is where every turn
leaves it, so only `message_select` sets it.

Ids grow down a branch (a message is written after the one it follows): a branch in id
order is root to leaf, and the walks below only ever step to a smaller id (up) or a larger
one (down), so a malformed row cannot make them loop.

A conversation written before branches, or by code that set no parents, has no parent at
all: it is read as one line in id order, and linked as one (`conversation_link`) before a
turn or a selection writes a branch into it.

    branch_filter(conversation=..., leaf_id=None)    the branch's messages, as a filter
    message_list(conversation=..., all_branches=...) the messages with their sibling numbers
    branch_ids(parents={id: parent_id}, leaf_id=...) the same branch, from rows already read
    message_select(message=...)                      makes the branch through it current
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.db import connection, transaction
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from chats.models import Conversation, Message, MessageRole
from chats.notifications import notify_user
from chats.services import conversation_check_idle, conversation_payload
from nexus.lib.errors import ApiError

_TABLE = Message._meta.db_table

# The ids of the branch ending at a leaf (%s, or the newest message when null): the leaf,
# then each parent in turn, up to the root.
_BRANCH_SQL = f"""
WITH RECURSIVE branch (id, parent_id) AS (
    SELECT id, parent_id FROM {_TABLE}
    WHERE conversation_id = %s
      AND id = COALESCE(%s, (SELECT MAX(id) FROM {_TABLE} WHERE conversation_id = %s))
    UNION ALL
    SELECT message.id, message.parent_id FROM {_TABLE} AS message
    JOIN branch ON message.id = branch.parent_id
    WHERE message.id < branch.id
)
SELECT id FROM branch
"""  # noqa: S608 (the table's name from the model)

# The newest message under a message (itself if none): the leaf of its newest branch.
_NEWEST_DESCENDANT_SQL = f"""
WITH RECURSIVE below (id) AS (
    SELECT id FROM {_TABLE} WHERE id = %s
    UNION ALL
    SELECT message.id FROM {_TABLE} AS message
    JOIN below ON message.parent_id = below.id
    WHERE message.id > below.id
)
SELECT MAX(id) FROM below
"""  # noqa: S608 (the table's name from the model)

# Gives each parentless message of a conversation with no parents at all the message
# before it as its parent: the line it was becomes one branch. (The data migration
# chats.0006 does the same for every conversation.)
_LINK_SQL = f"""
UPDATE {_TABLE} SET parent_id = (
    SELECT MAX(earlier.id) FROM {_TABLE} AS earlier
    WHERE earlier.conversation_id = {_TABLE}.conversation_id AND earlier.id < {_TABLE}.id
)
WHERE conversation_id = %s AND parent_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM {_TABLE} AS linked WHERE linked.conversation_id = %s
                  AND linked.parent_id IS NOT NULL)
"""  # noqa: S608 (the table's name from the model)


def is_linked(*, conversation_id: int) -> bool:
    """Whether the conversation's messages are a tree (any has a parent), not a bare line."""
    return Message.objects.filter(conversation_id=conversation_id, parent__isnull=False).exists()


def conversation_link(*, conversation_id: int) -> None:
    """Links a conversation of bare messages into one branch, in id order; a tree is left as it is."""
    with connection.cursor() as cursor:
        cursor.execute(_LINK_SQL, [conversation_id, conversation_id])


def leaf_id(*, conversation: Conversation | None) -> int | None:
    """The last message of the current branch: the chosen leaf, or else the newest message."""
    if conversation is None:
        return None
    if conversation.current_leaf_id is not None:
        return conversation.current_leaf_id
    return conversation.messages.order_by("-id").values_list("id", flat=True).first()


def branch_filter(*, conversation: Conversation, leaf_id: int | None = None) -> Q:
    """The messages of the branch ending at `leaf_id` (None: the current branch), as a filter.

    One recursive query over the branch's ids only: a reader that takes the newest few
    messages of a long branch loads those rows, not the conversation.
    """
    if leaf_id is None:
        leaf_id = conversation.current_leaf_id
    if not is_linked(conversation_id=conversation.pk):
        return Q(id__lte=leaf_id) if leaf_id is not None else Q()
    return Q(id__in=RawSQL(_BRANCH_SQL, (conversation.pk, leaf_id, conversation.pk)))  # noqa: S611


def _fresh_parent(message: Message) -> tuple[int | None, bool]:
    """The parent of `message` as stored now, and whether its conversation is linked.

    Read in this order because a concurrent turn may link a bare line at any moment: a line
    seen bare may since have given `message` a parent, which is then the one read.
    """
    if message.parent_id is not None:
        return message.parent_id, True
    linked = is_linked(conversation_id=message.conversation_id)
    return Message.objects.filter(pk=message.pk).values_list("parent_id", flat=True).first(), linked


def parent_of(*, message: Message) -> int | None:
    """The message `message` follows: its parent, or in a bare line the message before it."""
    parent_id, linked = _fresh_parent(message)
    if parent_id is not None or linked:
        return parent_id
    earlier = Message.objects.filter(conversation_id=message.conversation_id, id__lt=message.pk)
    return earlier.order_by("-id").values_list("id", flat=True).first()


def answered_message(*, reply: Message) -> Message:
    """The message a reply answers, which a regenerated reply answers again."""
    if reply.role != MessageRole.ASSISTANT:
        return reply  # a user (or tool) message is answered again itself
    parent_id, linked = _fresh_parent(reply)
    if parent_id is None and not linked:
        # A bare line: the last message of the caller's before the reply.
        earlier = Message.objects.filter(
            conversation_id=reply.conversation_id, id__lt=reply.pk, role=MessageRole.USER
        )
        parent_id = earlier.order_by("-id").values_list("id", flat=True).first()
    answered = Message.objects.filter(pk=parent_id).first() if parent_id is not None else None
    if answered is None:
        raise ApiError("There is no message of yours to answer again.", code="nothing_to_regenerate")
    return answered


def _siblings(linked: bool) -> tuple[Subquery | Value, Subquery | Value]:
    """How many messages share each message's parent, and which of them it is (1-based, oldest first)."""
    if not linked:
        return Value(1), Value(1)
    same_parent = (
        Message.objects.filter(conversation_id=OuterRef("conversation_id"))
        .annotate(parent_key=Coalesce("parent_id", Value(0)))
        .filter(parent_key=Coalesce(OuterRef("parent_id"), Value(0)))
        .order_by()
    )

    def counted(messages: QuerySet[Message]) -> Subquery:
        total = messages.values("conversation_id").annotate(total=Count("id")).values("total")
        return Subquery(total, output_field=IntegerField())

    return counted(same_parent), counted(same_parent.filter(id__lte=OuterRef("id")))


def message_list(*, conversation: Conversation, all_branches: bool = False) -> QuerySet[Message]:
    """The current branch root to leaf (or every message, in the order written), each with
    `sibling_count` and `sibling_index` (1-based)."""
    linked = is_linked(conversation_id=conversation.pk)
    messages = conversation.messages.all()
    if not all_branches and linked:
        messages = messages.filter(
            id__in=RawSQL(  # noqa: S611 (parameters, not text)
                _BRANCH_SQL, (conversation.pk, conversation.current_leaf_id, conversation.pk)
            )
        )
    count, index = _siblings(linked)
    return messages.annotate(sibling_count=count, sibling_index=index).order_by("id")


def branch_ids(*, parents: Mapping[int, int | None], leaf_id: int | None) -> set[int]:
    """The ids of the branch ending at `leaf_id` (None, or not among them: the newest), from
    `parents` ({message id: parent id}, every message of one conversation), read already."""
    if not parents:
        return set()
    if all(parent is None for parent in parents.values()):
        return set(parents)  # a bare line is one branch
    node: int | None = leaf_id if leaf_id in parents else max(parents)
    branch: set[int] = set()
    while node is not None and node not in branch:
        branch.add(node)
        node = parents.get(node)
    return branch


def branch_of(*, messages: Sequence[Message], leaf_id: int | None) -> list[Message]:
    """The messages of the branch ending at `leaf_id`, in their order, from all of one
    conversation's messages, read already (a prefetch)."""
    branch = branch_ids(parents={message.pk: message.parent_id for message in messages}, leaf_id=leaf_id)
    return [message for message in messages if message.pk in branch]


def sibling_numbers(*, parents: Mapping[int, int | None]) -> dict[int, tuple[int, int]]:
    """{id: (sibling_count, sibling_index)} of every message of one conversation, read already."""
    if all(parent is None for parent in parents.values()):
        return {message_id: (1, 1) for message_id in parents}
    children: dict[int | None, list[int]] = {}
    for message_id in sorted(parents):
        children.setdefault(parents[message_id], []).append(message_id)
    return {
        message_id: (len(siblings), position)
        for siblings in children.values()
        for position, message_id in enumerate(siblings, start=1)
    }


@transaction.atomic
def message_select(*, message: Message) -> Conversation:
    """Makes the branch through `message` current: its newest descendant (the leaf of the
    branch last continued below it, or the message itself) becomes the leaf.

    409 while a reply of the conversation is being written: the branch it extends stays current.
    """
    conversation = message.conversation
    conversation_check_idle(conversation_id=conversation.pk, lock=True)
    conversation_link(conversation_id=conversation.pk)
    with connection.cursor() as cursor:
        cursor.execute(_NEWEST_DESCENDANT_SQL, [message.pk])
        row = cursor.fetchone()
    conversation.current_leaf_id = row[0] if row and row[0] is not None else message.pk
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=conversation.current_leaf_id)
    notify_user(
        user_id=conversation.owner_id,
        event="conversation.updated",
        payload=conversation_payload(conversation),
    )
    return conversation
