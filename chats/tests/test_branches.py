"""Branches: regenerating and editing add siblings, nothing is deleted, and the current
branch is what the user sees and what the model is sent."""

from __future__ import annotations

import importlib

import pytest
from asgiref.sync import sync_to_async
from django.apps import apps
from django.db import connection

from chats.models import Conversation, Message
from chats.tests.conftest import client_for, read_events, send

pytestmark = pytest.mark.django_db(transaction=True)


async def turn(async_client, chat, reply: str, **body) -> list:
    chat.upstream.configure(reply=reply)
    events = await read_events(await send(async_client, chat.headers, **body))
    assert events[-1].event == "done", events[-1]
    return events


async def regenerate(async_client, chat, message_id: int, reply: str) -> list:
    chat.upstream.configure(reply=reply)
    response = await async_client.post(f"/chat/messages/{message_id}/regenerate", headers=chat.headers)
    assert response.status_code == 200
    events = await read_events(response)
    assert events[-1].event == "done", events[-1]
    return events


async def branch(async_client, chat, conversation_id: int, query: str = "") -> list[dict]:
    response = await async_client.get(
        f"/chat/conversations/{conversation_id}/messages{query}", headers=chat.headers
    )
    assert response.status_code == 200, response.content
    return response.json()["results"]


async def sent_upstream(chat) -> list[tuple[str, str]]:
    body = (await sync_to_async(chat.upstream.requests)())[-1]["body"]
    return [(message["role"], message["content"]) for message in body["messages"]]


async def test_regenerating_twice_then_selecting_the_first_reply_continues_that_branch(async_client, chat):
    first = await turn(async_client, chat, "Blue.", message="Favourite colour?", model="gpt-test")
    conversation_id, a1 = first[0].data["conversation_id"], first[0].data["message_id"]
    second = await regenerate(async_client, chat, a1, "Green.")
    third = await regenerate(async_client, chat, second[0].data["message_id"], "Red.")
    question = first[0].data["parent_id"]
    assert second[0].data["parent_id"] == third[0].data["parent_id"] == question
    # Each regenerate answered the question alone, not the replies beside it.
    assert await sent_upstream(chat) == [("user", "Favourite colour?")]

    every = await branch(async_client, chat, conversation_id, "?all=true")
    assert [(m["content"], m["parent_id"]) for m in every] == [
        ("Favourite colour?", None),
        ("Blue.", question),
        ("Green.", question),
        ("Red.", question),
    ]
    assert [(m["sibling_index"], m["sibling_count"]) for m in every] == [(1, 1), (1, 3), (2, 3), (3, 3)]
    assert [m["content"] for m in await branch(async_client, chat, conversation_id)] == [
        "Favourite colour?",
        "Red.",
    ]

    selected = await async_client.post(f"/chat/messages/{a1}/select", headers=chat.headers)
    assert selected.status_code == 200
    assert [m["content"] for m in selected.json()["results"]] == ["Favourite colour?", "Blue."]
    assert [m["content"] for m in await branch(async_client, chat, conversation_id)] == [
        "Favourite colour?",
        "Blue.",
    ]

    fourth = await turn(async_client, chat, "Like the sky.", message="Why?", conversation_id=conversation_id)
    assert await sent_upstream(chat) == [
        ("user", "Favourite colour?"),
        ("assistant", "Blue."),
        ("user", "Why?"),
    ]
    why = await Message.objects.aget(pk=fourth[0].data["parent_id"])
    assert why.parent_id == a1
    assert [m["content"] for m in await branch(async_client, chat, conversation_id)] == [
        "Favourite colour?",
        "Blue.",
        "Why?",
        "Like the sky.",
    ]
    assert await Message.objects.filter(conversation_id=conversation_id).acount() == 6


async def test_selecting_a_branch_shows_where_it_was_last_continued(async_client, chat):
    first = await turn(async_client, chat, "Blue.", message="Favourite colour?", model="gpt-test")
    conversation_id, a1 = first[0].data["conversation_id"], first[0].data["message_id"]
    await turn(async_client, chat, "Like the sky.", message="Why?", conversation_id=conversation_id)
    await regenerate(async_client, chat, a1, "Green.")
    assert [m["content"] for m in await branch(async_client, chat, conversation_id)] == [
        "Favourite colour?",
        "Green.",
    ]
    selected = await async_client.post(f"/chat/messages/{a1}/select", headers=chat.headers)
    assert [m["content"] for m in selected.json()["results"]] == [
        "Favourite colour?",
        "Blue.",
        "Why?",
        "Like the sky.",
    ]


async def test_editing_a_message_adds_a_sibling_and_answers_it(async_client, chat):
    first = await turn(async_client, chat, "Four.", message="2+2?", model="gpt-test")
    conversation_id = first[0].data["conversation_id"]
    second = await turn(async_client, chat, "Six.", message="And 3+3?", conversation_id=conversation_id)
    original = second[0].data["parent_id"]

    chat.upstream.configure(reply="Eight.")
    response = await async_client.patch(
        f"/chat/messages/{original}",
        {"content": "And 4+4?"},
        content_type="application/json",
        headers=chat.headers,
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = await read_events(response)
    assert events[-1].event == "done"
    assert await sent_upstream(chat) == [("user", "2+2?"), ("assistant", "Four."), ("user", "And 4+4?")]

    edit = await Message.objects.aget(pk=events[0].data["parent_id"])
    assert (edit.content, edit.parent_id) == ("And 4+4?", first[0].data["message_id"])
    assert edit.edited_at is not None
    shown = await branch(async_client, chat, conversation_id)
    assert [m["content"] for m in shown] == ["2+2?", "Four.", "And 4+4?", "Eight."]
    assert (shown[2]["sibling_index"], shown[2]["sibling_count"]) == (2, 2)
    # Nothing was deleted: the first wording and its answer are one click away.
    every = await branch(async_client, chat, conversation_id, "?all=true")
    assert [m["content"] for m in every] == ["2+2?", "Four.", "And 3+3?", "Six.", "And 4+4?", "Eight."]
    selected = await async_client.post(f"/chat/messages/{original}/select", headers=chat.headers)
    assert [m["content"] for m in selected.json()["results"]] == ["2+2?", "Four.", "And 3+3?", "Six."]


async def test_editing_the_first_message_starts_a_branch_of_its_own(async_client, chat):
    first = await turn(async_client, chat, "Hi!", message="Hello", model="gpt-test")
    chat.upstream.configure(reply="Bonjour !")
    response = await async_client.patch(
        f"/chat/messages/{first[0].data['parent_id']}",
        {"content": "Salut"},
        content_type="application/json",
        headers=chat.headers,
    )
    assert (await read_events(response))[-1].event == "done"
    assert await sent_upstream(chat) == [("user", "Salut")]
    shown = await branch(async_client, chat, first[0].data["conversation_id"])
    assert [(m["content"], m["parent_id"], m["sibling_index"]) for m in shown] == [
        ("Salut", None, 2),
        ("Bonjour !", shown[0]["id"], 1),
    ]


async def test_history_and_the_shared_view_follow_the_current_branch(async_client, chat):
    first = await turn(async_client, chat, "Blue.", message="Favourite colour?", model="gpt-test")
    await regenerate(async_client, chat, first[0].data["message_id"], "Green.")
    history = await async_client.get("/chat/history", headers=chat.headers)
    assert [m["content"] for m in history.json()["results"][0]["messages"]] == ["Favourite colour?", "Green."]

    conversation_id = first[0].data["conversation_id"]
    token = (
        await async_client.post(f"/chat/conversations/{conversation_id}/share", headers=chat.headers)
    ).json()["token"]
    assert [m["content"] for m in (await async_client.get(f"/chat/shared/{token}")).json()["messages"]] == [
        "Favourite colour?",
        "Green.",
    ]
    await async_client.post(f"/chat/messages/{first[0].data['message_id']}/select", headers=chat.headers)
    assert [m["content"] for m in (await async_client.get(f"/chat/shared/{token}")).json()["messages"]] == [
        "Favourite colour?",
        "Blue.",
    ]


async def test_a_conversation_from_before_branches_is_continued_whole(async_client, chat):
    conversation = await Conversation.objects.acreate(owner=chat.user, model="gpt-test")
    for role, content in [("user", "One?"), ("assistant", "1."), ("user", "Two?"), ("assistant", "2.")]:
        await Message.objects.acreate(conversation=conversation, role=role, content=content)
    await turn(async_client, chat, "3.", message="Three?", conversation_id=conversation.pk)
    assert [content for _, content in await sent_upstream(chat)] == ["One?", "1.", "Two?", "2.", "Three?"]
    shown = await branch(async_client, chat, conversation.pk)
    assert [m["content"] for m in shown] == ["One?", "1.", "Two?", "2.", "Three?", "3."]
    assert [m["parent_id"] for m in shown] == [None, *(m["id"] for m in shown[:-1])]


def test_the_data_migration_makes_each_old_conversation_one_branch(alice):
    old = Conversation.objects.create(owner=alice, title="Before branches")
    lines = [
        Message.objects.create(conversation=old, role=role, content=content)
        for role, content in [("user", "One?"), ("assistant", "1."), ("user", "Two?"), ("assistant", "2.")]
    ]
    other = Conversation.objects.create(owner=alice, title="Another")
    alone = Message.objects.create(conversation=other, role="user", content="Alone")
    # A conversation that is a tree already is left as it is: here, two roots.
    tree = Conversation.objects.create(owner=alice, title="Branched")
    root = Message.objects.create(conversation=tree, role="user", content="Hi")
    Message.objects.create(conversation=tree, role="assistant", content="Hello", parent=root)
    edited_root = Message.objects.create(conversation=tree, role="user", content="Hi there")

    migration = importlib.import_module("chats.migrations.0006_messages_as_branches")
    with connection.schema_editor() as schema_editor:
        migration.link_conversations(apps, schema_editor)

    parents = [message.parent_id for message in Message.objects.filter(conversation=old).order_by("id")]
    assert parents == [None, lines[0].pk, lines[1].pk, lines[2].pk]
    assert Message.objects.get(pk=alone.pk).parent_id is None
    assert Message.objects.get(pk=edited_root.pk).parent_id is None
    shown = client_for(alice).get(f"/chat/conversations/{old.pk}/messages").json()["results"]
    assert [(m["content"], m["sibling_count"]) for m in shown] == [
        ("One?", 1),
        ("1.", 1),
        ("Two?", 1),
        ("2.", 1),
    ]


def test_the_messages_of_a_branch_cost_the_same_few_queries_however_long(
    alice, django_assert_max_num_queries
):
    conversation = Conversation.objects.create(owner=alice, title="Long")
    parent = None
    for number in range(60):
        parent = Message.objects.create(
            conversation=conversation,
            role="user" if number % 2 == 0 else "assistant",
            content=f"m{number}",
            parent=parent,
        )
        if number % 2:  # a regenerated reply beside every reply
            Message.objects.create(
                conversation=conversation, role="assistant", content=f"alt{number}", parent=parent.parent
            )
    client = client_for(alice)
    with django_assert_max_num_queries(4):
        page = client.get(f"/chat/conversations/{conversation.pk}/messages?page_size=50").json()
    assert page["count"] == 60
    assert [m["content"] for m in page["results"][:3]] == ["m0", "m1", "m2"]
    assert page["results"][1]["sibling_count"] == 2


def test_deleting_a_message_keeps_the_ones_after_it_on_the_branch(alice):
    conversation = Conversation.objects.create(owner=alice, title="t")
    question = Message.objects.create(conversation=conversation, role="user", content="Q")
    reply = Message.objects.create(conversation=conversation, role="assistant", content="A", parent=question)
    follow_up = Message.objects.create(conversation=conversation, role="user", content="Q2", parent=reply)
    client = client_for(alice)
    assert client.delete(f"/chat/messages/{reply.pk}").status_code == 204
    follow_up.refresh_from_db()
    assert follow_up.parent_id == question.pk
    shown = client.get(f"/chat/conversations/{conversation.pk}/messages").json()["results"]
    assert [m["content"] for m in shown] == ["Q", "Q2"]


def test_bad_choices_are_refused(alice, bob):
    conversation = Conversation.objects.create(owner=alice, title="t")
    message = Message.objects.create(conversation=conversation, role="user", content="Q")
    Message.objects.create(
        conversation=conversation, role="assistant", content="A", parent=message, status="streaming"
    )
    alice_client = client_for(alice)
    response = alice_client.get(f"/chat/conversations/{conversation.pk}/messages?all=maybe")
    assert (response.status_code, response.json()["error"]["fields"]) == (
        400,
        {"all": ["Use true or false."]},
    )
    # One turn per conversation: the branch cannot change under a reply being written.
    response = alice_client.post(f"/chat/messages/{message.pk}/select")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "turn_in_progress")
    assert client_for(bob).post(f"/chat/messages/{message.pk}/select").status_code == 404
    assert Conversation.objects.get(pk=conversation.pk).current_leaf_id is None
