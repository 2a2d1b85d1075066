"""Attachments: files a message carries reach the model (images as image parts, documents as
text headed by their name), in the turn and in the history after it, over SSE and the WebSocket;
what a caller may not attach, or a model cannot read, is refused before anything is saved or charged."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import User
from billing.models import UsageRecord
from chats.models import Conversation, Message
from chats.routing import websocket_urlpatterns
from chats.tests.conftest import read_events, send
from chats.tests.test_files import JPEG, PNG, pdf_with_text

pytestmark = pytest.mark.django_db(transaction=True)

KINDS = {"openai": "gpt-test", "anthropic": "claude-test", "gemini": "gemini-test"}


@pytest.fixture
def chat(chat, settings, tmp_path):
    """The chats tests' user and OpenAI-format model, with an Anthropic and a Gemini model beside it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    for kind in ("anthropic", "gemini"):
        chat.upstream.make_model(
            kind=kind,
            name=KINDS[kind],
            context_window=8192,
            max_output_tokens=256,
            input_price_per_million=Decimal("1.00"),
            output_price_per_million=Decimal("2.00"),
        )
    chat.upstream.make_model(kind="openai", name="text-only", supports_vision=False, max_output_tokens=256)
    chat.upstream.configure(reply="I see it.")
    return chat


async def upload(client, headers, name: str, data: bytes, content_type: str) -> int:
    response = await client.post(
        "/chat/files", {"file": SimpleUploadedFile(name, data, content_type=content_type)}, headers=headers
    )
    assert response.status_code == 201, response.json()
    return int(response.json()["id"])


def last_body(chat) -> dict[str, Any]:
    return chat.upstream.requests()[-1]["body"]


def user_turns(body: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The content parts of each user message of an upstream request, whatever its wire format."""
    if "contents" in body:  # Gemini
        return [content["parts"] for content in body["contents"] if content["role"] == "user"]
    turns = []
    for message in body["messages"]:
        if message["role"] == "user":
            content = message["content"]
            turns.append([{"type": "text", "text": content}] if isinstance(content, str) else content)
    return turns


def images_in(parts: list[dict[str, Any]]) -> list[bytes]:
    """The bytes of the image parts among these, as OpenAI, Anthropic and Gemini each carry them."""
    images = []
    for part in parts:
        if part.get("type") == "image_url":
            url = part["image_url"]["url"]
            assert url.startswith("data:image/png;base64,")
            images.append(base64.b64decode(url.split(",", 1)[1]))
        elif part.get("type") == "image":
            assert part["source"]["media_type"] == "image/png"
            images.append(base64.b64decode(part["source"]["data"]))
        elif "inlineData" in part:
            inline = part["inlineData"]
            assert inline.get("mimeType", inline.get("mime_type")) == "image/png"
            images.append(base64.urlsafe_b64decode(part["inlineData"]["data"]))
    return images


def texts_in(parts: list[dict[str, Any]]) -> list[str]:
    return [part["text"] for part in parts if "text" in part and part.get("type", "text") == "text"]


def nothing_saved_or_charged(chat) -> bool:
    return (
        not Conversation.objects.exists()
        and not Message.objects.exists()
        and not UsageRecord.objects.exists()
        and chat.upstream.requests() == []
    )


# --- images and documents reach the model --------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
async def test_an_attached_image_reaches_a_vision_model_of_each_kind_as_an_image(async_client, chat, kind):
    file_id = await upload(async_client, chat.headers, "cat.png", PNG, "image/png")
    events = await read_events(
        await send(
            async_client, chat.headers, message="What is this?", model=KINDS[kind], attachments=[file_id]
        )
    )
    assert events[-1].event == "done", events[-1].data
    (parts,) = user_turns(last_body(chat))
    assert images_in(parts) == [PNG]
    assert texts_in(parts) == ["What is this?"]
    question = await Message.objects.aget(conversation_id=events[0].data["conversation_id"], role="user")
    assert [f.pk async for f in question.attachments.all()] == [file_id]


@pytest.mark.parametrize(
    ("name", "data", "content_type", "expected"),
    [
        ("notes.txt", b"Buy milk and eggs.", "text/plain", "Buy milk and eggs."),
        ("plan.md", b"# Plan\n\n- walk the dog", "text/markdown", "# Plan\n\n- walk the dog"),
        ("report.pdf", pdf_with_text("Quarterly revenue grew"), "application/pdf", "Quarterly revenue grew"),
    ],
)
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_an_attached_document_reaches_the_model_as_text_headed_by_its_name(
    async_client, chat, kind, name, data, content_type, expected
):
    file_id = await upload(async_client, chat.headers, name, data, content_type)
    events = await read_events(
        await send(
            async_client, chat.headers, message="Summarize it", model=KINDS[kind], attachments=[file_id]
        )
    )
    assert events[-1].event == "done"
    (parts,) = user_turns(last_body(chat))
    document, question = texts_in(parts)
    assert document == f"File: {name} ({content_type})\n\n{expected}"
    assert question == "Summarize it"
    assert images_in(parts) == []


async def test_several_files_go_in_the_order_they_were_uploaded_before_the_text(async_client, chat):
    notes = await upload(async_client, chat.headers, "notes.txt", b"first", "text/plain")
    image = await upload(async_client, chat.headers, "cat.png", PNG, "image/png")
    await read_events(
        await send(async_client, chat.headers, message="Both?", model="gpt-test", attachments=[image, notes])
    )
    (parts,) = user_turns(last_body(chat))
    assert [part["type"] for part in parts] == ["text", "image_url", "text"]
    assert parts[0]["text"].endswith("first") and parts[-1]["text"] == "Both?"


async def test_the_next_turn_still_sends_the_earlier_attachment(async_client, chat):
    file_id = await upload(async_client, chat.headers, "cat.png", PNG, "image/png")
    first = await read_events(
        await send(async_client, chat.headers, message="What is it?", model="gpt-test", attachments=[file_id])
    )
    conversation_id = first[0].data["conversation_id"]
    await read_events(
        await send(async_client, chat.headers, message="And its colour?", conversation_id=conversation_id)
    )
    earlier, latest = user_turns(last_body(chat))
    assert images_in(earlier) == [PNG]
    assert texts_in(latest) == ["And its colour?"]


async def test_a_regenerated_reply_answers_the_message_with_its_attachment(async_client, chat):
    file_id = await upload(async_client, chat.headers, "cat.png", PNG, "image/png")
    first = await read_events(
        await send(async_client, chat.headers, message="What is it?", model="gpt-test", attachments=[file_id])
    )
    response = await async_client.post(
        f"/chat/messages/{first[0].data['message_id']}/regenerate", headers=chat.headers
    )
    assert (await read_events(response))[-1].event == "done"
    (parts,) = user_turns(last_body(chat))
    assert images_in(parts) == [PNG]


async def test_an_edit_keeps_the_files_of_the_message_it_edits_unless_it_names_others(async_client, chat):
    image = await upload(async_client, chat.headers, "cat.png", PNG, "image/png")
    notes = await upload(async_client, chat.headers, "notes.txt", b"a note", "text/plain")
    first = await read_events(
        await send(async_client, chat.headers, message="What is it?", model="gpt-test", attachments=[image])
    )
    question = await Message.objects.aget(conversation_id=first[0].data["conversation_id"], role="user")

    kept = await async_client.patch(
        f"/chat/messages/{question.pk}",
        {"content": "What is this?"},
        content_type="application/json",
        headers=chat.headers,
    )
    await read_events(kept)
    (parts,) = user_turns(last_body(chat))
    assert images_in(parts) == [PNG]

    replaced = await async_client.patch(
        f"/chat/messages/{question.pk}",
        {"content": "And this?", "attachments": [notes]},
        content_type="application/json",
        headers=chat.headers,
    )
    await read_events(replaced)
    (parts,) = user_turns(last_body(chat))
    assert images_in(parts) == [] and texts_in(parts) == [
        "File: notes.txt (text/plain)\n\na note",
        "And this?",
    ]


async def test_a_websocket_send_takes_attachments(chat):
    file_id = await sync_to_async(_upload_as)(chat.user, "cat.png", PNG, "image/png")
    token = chat.headers["Authorization"].removeprefix("Bearer ")
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/chat?token={token}")
    assert (await communicator.connect())[0]
    await communicator.send_json_to(
        {"type": "send", "message": "What is it?", "model": "claude-test", "attachments": [file_id]}
    )
    frames: list[dict[str, Any]] = []
    while not frames or frames[-1]["type"] not in ("done", "error"):
        frames.append(await communicator.receive_json_from(timeout=5))
    assert frames[-1]["type"] == "done", frames[-1]
    await communicator.disconnect()
    (parts,) = user_turns(last_body(chat))
    assert images_in(parts) == [PNG]


def _upload_as(user: User, name: str, data: bytes, content_type: str) -> int:
    from chats.files import file_create

    return file_create(user=user, upload=SimpleUploadedFile(name, data, content_type=content_type)).pk


# --- refusals, before anything is saved or charged ------------------------------------------


async def test_another_users_file_is_a_404_and_nothing_is_saved_or_charged(async_client, chat):
    mallory = await sync_to_async(User.objects.create_user)(
        "mallory@example.com", "correct horse battery staple"
    )
    theirs = await sync_to_async(_upload_as)(mallory, "secret.txt", b"private", "text/plain")
    response = await send(
        async_client, chat.headers, message="Read it", model="gpt-test", attachments=[theirs]
    )
    assert response.status_code == 404
    error = json.loads(response.content)["error"]
    assert (error["code"], error["param"]) == ("file_not_found", "attachments")
    assert "private" not in response.content.decode()
    assert await sync_to_async(nothing_saved_or_charged)(chat)


async def test_an_unknown_file_is_a_404_over_the_websocket_too(chat):
    token = chat.headers["Authorization"].removeprefix("Bearer ")
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/chat?token={token}")
    assert (await communicator.connect())[0]
    await communicator.send_json_to(
        {"type": "send", "message": "hi", "model": "gpt-test", "attachments": [999999]}
    )
    frame = await communicator.receive_json_from(timeout=5)
    assert (frame["type"], frame["status"], frame["error"]["code"]) == ("error", 404, "file_not_found")
    await communicator.disconnect()
    assert await sync_to_async(nothing_saved_or_charged)(chat)


async def test_an_image_for_a_model_without_vision_is_refused_with_nothing_saved_or_charged(
    async_client, chat
):
    file_id = await upload(async_client, chat.headers, "cat.png", PNG, "image/png")
    response = await send(
        async_client, chat.headers, message="What is it?", model="text-only", attachments=[file_id]
    )
    assert response.status_code == 400
    error = json.loads(response.content)["error"]
    assert (error["code"], error["param"]) == ("model_not_capable", "attachments")
    assert await sync_to_async(nothing_saved_or_charged)(chat)


async def test_a_document_for_a_model_without_vision_is_read_as_text(async_client, chat):
    file_id = await upload(async_client, chat.headers, "notes.txt", b"plain words", "text/plain")
    events = await read_events(
        await send(async_client, chat.headers, message="Read it", model="text-only", attachments=[file_id])
    )
    assert events[-1].event == "done"


async def test_an_earlier_image_is_named_not_sent_when_the_conversation_moves_to_a_model_without_vision(
    async_client, chat
):
    file_id = await upload(async_client, chat.headers, "cat.png", PNG, "image/png")
    first = await read_events(
        await send(async_client, chat.headers, message="What is it?", model="gpt-test", attachments=[file_id])
    )
    events = await read_events(
        await send(
            async_client,
            chat.headers,
            message="Thanks",
            model="text-only",
            conversation_id=first[0].data["conversation_id"],
        )
    )
    assert events[-1].event == "done"
    earlier, _ = user_turns(last_body(chat))
    assert texts_in(earlier)[0] == "[Image cat.png: not shown, this model does not read images]"


async def test_a_document_too_long_for_the_context_window_is_refused(async_client, chat):
    file_id = await upload(async_client, chat.headers, "book.txt", b"word " * 20_000, "text/plain")
    response = await send(
        async_client, chat.headers, message="Summarize", model="gpt-test", attachments=[file_id]
    )
    assert response.status_code == 400
    assert json.loads(response.content)["error"]["code"] == "context_length"
    assert await sync_to_async(nothing_saved_or_charged)(chat)


async def test_more_attachments_than_the_limit_are_a_400(async_client, chat, settings):
    settings.MAX_ATTACHMENTS = 2
    ids = [await upload(async_client, chat.headers, f"{n}.txt", b"x", "text/plain") for n in range(3)]
    response = await send(async_client, chat.headers, message="All", model="gpt-test", attachments=ids)
    assert response.status_code == 400
    assert json.loads(response.content)["error"]["param"] == "attachments"
    assert await sync_to_async(nothing_saved_or_charged)(chat)


# --- what the APIs show of them ---------------------------------------------------------------


async def test_history_messages_and_share_links_show_attachments(async_client, chat):
    image = await upload(async_client, chat.headers, "cat.png", PNG, "image/png")
    jpeg = await upload(async_client, chat.headers, "dog.jpg", JPEG, "image/jpeg")
    events = await read_events(
        await send(async_client, chat.headers, message="Pets?", model="gpt-test", attachments=[jpeg, image])
    )
    conversation_id = events[0].data["conversation_id"]
    expected = [
        {"id": image, "name": "cat.png", "content_type": "image/png", "size": len(PNG)},
        {"id": jpeg, "name": "dog.jpg", "content_type": "image/jpeg", "size": len(JPEG)},
    ]

    history = json.loads((await async_client.get("/chat/history", headers=chat.headers)).content)
    question, reply = history["results"][0]["messages"]
    assert (question["attachments"], reply["attachments"]) == (expected, [])

    listed = await async_client.get(f"/chat/conversations/{conversation_id}/messages", headers=chat.headers)
    question, reply = json.loads(listed.content)["results"]
    assert (question["attachments"], reply["attachments"]) == (expected, [])

    share = await async_client.post(f"/chat/conversations/{conversation_id}/share", headers=chat.headers)
    shared = await async_client.get(f"/chat/shared/{json.loads(share.content)['token']}")
    question, _ = json.loads(shared.content)["messages"]
    assert question["attachments"] == [{"name": "cat.png"}, {"name": "dog.jpg"}]
    # Neither the file's id nor a way to its bytes (a substring of an id would also match a timestamp).
    shown = json.dumps(question)
    assert f'"id": {image},' not in shown and f"files/{image}" not in shown
    assert "content" not in json.dumps(question["attachments"])


async def test_a_deleted_file_leaves_the_message_and_the_conversation_goes_on(async_client, chat):
    file_id = await upload(async_client, chat.headers, "cat.png", PNG, "image/png")
    first = await read_events(
        await send(async_client, chat.headers, message="What is it?", model="gpt-test", attachments=[file_id])
    )
    assert (await async_client.delete(f"/chat/files/{file_id}", headers=chat.headers)).status_code == 204
    events = await read_events(
        await send(
            async_client,
            chat.headers,
            message="Still there?",
            conversation_id=first[0].data["conversation_id"],
        )
    )
    assert events[-1].event == "done"
    earlier, _ = user_turns(last_body(chat))
    assert texts_in(earlier) == ["What is it?"]
