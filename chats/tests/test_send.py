"""POST /chat/send: the AI turn over SSE, end to end through the fake upstream."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from billing.models import UsageRecord
from chats.models import Conversation, Message, Template
from chats.tests.conftest import read_events, send
from llm.tokens import estimate_tokens

pytestmark = pytest.mark.django_db(transaction=True)


def messages_of(conversation_id: int) -> list[tuple[str, str, str]]:
    return list(
        Message.objects.filter(conversation_id=conversation_id)
        .order_by("id")
        .values_list("role", "content", "status")
    )


async def test_deltas_arrive_over_time_and_the_reply_is_saved(async_client, chat):
    chat.upstream.configure(reply="The quick brown fox jumps over the lazy dog", token_delay=0.03)
    response = await send(async_client, chat.headers, message="Tell me about foxes", model="gpt-test")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = await read_events(response)

    names = [event.event for event in events]
    assert names[0] == "start" and names[-1] == "done"
    deltas = [event for event in events if event.event == "delta"]
    assert len(deltas) == 9
    assert deltas[-1].received_at - deltas[0].received_at > 0.15  # streamed, not sent in one piece
    assert [event.id for event in events] == list(range(1, len(events) + 1))
    assert "".join(event.data["content"] for event in deltas) == "The quick brown fox jumps over the lazy dog"

    start, done = events[0].data, events[-1].data
    assert done["message_id"] == start["message_id"]
    assert done["finish_reason"] == "stop"
    assert done["usage"]["output_tokens"] == 9
    history = await sync_to_async(messages_of)(start["conversation_id"])
    assert history == [
        ("user", "Tell me about foxes", "complete"),
        ("assistant", "The quick brown fox jumps over the lazy dog", "complete"),
    ]


async def test_a_new_conversation_is_titled_from_the_first_message(async_client, chat):
    response = await send(
        async_client, chat.headers, message="Plan a weekend in Lisbon\nwith kids", model="gpt-test"
    )
    events = await read_events(response)
    conversation = await Conversation.objects.aget(pk=events[0].data["conversation_id"])
    assert conversation.title == "Plan a weekend in Lisbon with kids"
    assert conversation.model == "gpt-test"
    assert conversation.owner_id == chat.user.pk


async def test_the_default_model_is_used_when_none_is_named(async_client, chat, settings):
    settings.DEFAULT_MODEL = "gpt-test"
    events = await read_events(await send(async_client, chat.headers, message="hi"))
    assert events[0].data["model"] == "gpt-test"
    assert events[-1].event == "done"


async def test_a_second_message_carries_the_earlier_turns_upstream(async_client, chat):
    chat.upstream.configure(reply="Paris.")
    first = await read_events(
        await send(async_client, chat.headers, message="Capital of France?", model="gpt-test")
    )
    conversation_id = first[0].data["conversation_id"]
    chat.upstream.configure(reply="About 2 million.")
    second = await read_events(
        await send(async_client, chat.headers, message="Its population?", conversation_id=conversation_id)
    )
    assert second[-1].event == "done"
    sent = (await sync_to_async(chat.upstream.requests)())[-1]["body"]["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
        ("user", "Its population?"),
    ]


async def test_the_oldest_turns_are_dropped_to_fit_the_context_window(async_client, chat):
    chat.model.context_window = 1500
    await chat.model.asave()
    conversation = await Conversation.objects.acreate(owner=chat.user, model="gpt-test")
    for number in range(40):
        await Message.objects.acreate(
            conversation=conversation, role="user", content=f"old {number} " + "x" * 400
        )
    await read_events(
        await send(async_client, chat.headers, message="newest", conversation_id=conversation.pk)
    )
    sent = (await sync_to_async(chat.upstream.requests)())[-1]["body"]["messages"]
    assert sent[-1]["content"] == "newest"
    assert len(sent) < 41
    assert sent[0]["content"].startswith("old ") and not sent[0]["content"].startswith("old 0 ")


async def test_a_template_applies_its_system_prompt_and_parameters(async_client, chat):
    template = await Template.objects.acreate(
        owner=chat.user,
        name="Pirate",
        system_prompt="Talk like a pirate.",
        model="gpt-test",
        parameters={"temperature": 0.3},
    )
    events = await read_events(
        await send(async_client, chat.headers, message="Hello", template_id=template.pk)
    )
    assert events[-1].event == "done"
    body = (await sync_to_async(chat.upstream.requests)())[-1]["body"]
    assert body["messages"][0] == {"role": "system", "content": "Talk like a pirate."}
    assert body["temperature"] == 0.3


async def test_an_upstream_failure_mid_stream_keeps_the_partial_reply_as_failed(async_client, chat):
    chat.upstream.configure(reply="one two three four five six", cut_after=3)
    events = await read_events(await send(async_client, chat.headers, message="count", model="gpt-test"))
    assert [event.event for event in events] == ["start", "delta", "delta", "delta", "error"]
    error = events[-1].data["error"]
    assert error["code"].startswith("upstream_")
    reply = await Message.objects.aget(pk=events[0].data["message_id"])
    assert (reply.content, reply.status, reply.error_code) == ("one two three", "failed", error["code"])
    record = await UsageRecord.objects.aget()
    assert record.outcome == "failed"
    assert record.output_tokens > 0


async def test_an_upstream_error_before_any_token_is_an_error_event(async_client, chat):
    chat.upstream.configure(error_status=401)
    events = await read_events(await send(async_client, chat.headers, message="hi", model="gpt-test"))
    assert [event.event for event in events] == ["start", "error"]
    assert events[-1].data["error"]["code"] == "upstream_auth"
    reply = await Message.objects.aget(pk=events[0].data["message_id"])
    assert reply.status == "failed" and reply.content == ""


async def test_usage_is_recorded_with_its_cost(async_client, chat):
    chat.upstream.configure(reply="a b c d")
    events = await read_events(await send(async_client, chat.headers, message="hi", model="gpt-test"))
    usage = events[-1].data["usage"]
    record = await UsageRecord.objects.aget()
    assert (record.input_tokens, record.output_tokens) == (usage["input_tokens"], usage["output_tokens"])
    assert record.outcome == "complete"
    reply = await Message.objects.aget(pk=events[0].data["message_id"])
    assert (reply.input_tokens, reply.output_tokens) == (usage["input_tokens"], usage["output_tokens"])


async def test_a_reader_that_goes_away_does_not_lose_the_reply(async_client, chat):
    chat.upstream.configure(tokens=30, token_delay=0.01)
    response = await send(async_client, chat.headers, message="long one", model="gpt-test")
    events = await read_events(response, limit=3)  # then the client is gone
    message_id = events[0].data["message_id"]
    for _ in range(300):
        reply = await Message.objects.aget(pk=message_id)
        if reply.status != "streaming":
            break
        await asyncio.sleep(0.02)
    assert reply.status == "complete"
    assert reply.content.split() == [f"word{n}" for n in range(1, 31)]
    assert await UsageRecord.objects.acount() == 1


async def test_stop_keeps_the_partial_reply_and_closes_the_upstream(async_client, chat):
    chat.upstream.configure(tokens=500, token_delay=0.01)
    response = await send(async_client, chat.headers, message="go on", model="gpt-test")
    iterator = response.streaming_content.__aiter__()
    first = await iterator.__anext__()
    message_id = int(first.decode().split('"message_id": ')[1].split(",")[0].split("}")[0])
    await asyncio.sleep(0.1)
    stop = await async_client.post(f"/chat/messages/{message_id}/stop", headers=chat.headers)
    assert stop.status_code == 202
    rest = b"".join([chunk async for chunk in iterator])
    assert b"event: done" in rest and b'"finish_reason": "stopped"' in rest
    reply = await Message.objects.aget(pk=message_id)
    assert reply.status == "stopped"
    assert 0 < len(reply.content.split()) < 500
    record = await UsageRecord.objects.aget()
    assert record.outcome == "stopped"
    # Charged once, for the text that was generated and kept, at the model's prices.
    assert record.output_tokens == reply.output_tokens == estimate_tokens(reply.content)
    assert record.cost == (
        record.input_tokens * Decimal("1.00") + record.output_tokens * Decimal("2.00")
    ) / Decimal(1_000_000)
    requests = await sync_to_async(chat.upstream.wait_for)(
        lambda reqs: reqs and reqs[-1].get("closed_by_client")
    )
    assert requests[-1]["closed_by_client"] is True


async def test_stopping_a_finished_reply_is_a_conflict(async_client, chat):
    events = await read_events(await send(async_client, chat.headers, message="hi", model="gpt-test"))
    stop = await async_client.post(
        f"/chat/messages/{events[0].data['message_id']}/stop", headers=chat.headers
    )
    assert stop.status_code == 409


async def test_regenerate_adds_a_reply_beside_the_last_one(async_client, chat):
    chat.upstream.configure(reply="first answer")
    events = await read_events(await send(async_client, chat.headers, message="question", model="gpt-test"))
    old_reply = events[0].data["message_id"]
    chat.upstream.configure(reply="second answer")
    response = await async_client.post(f"/chat/messages/{old_reply}/regenerate", headers=chat.headers)
    assert response.status_code == 200
    again = await read_events(response)
    assert again[-1].event == "done"
    history = await sync_to_async(messages_of)(events[0].data["conversation_id"])
    assert history == [
        ("user", "question", "complete"),
        ("assistant", "first answer", "complete"),
        ("assistant", "second answer", "complete"),
    ]
    sent = (await sync_to_async(chat.upstream.requests)())[-1]["body"]["messages"]
    assert [m["content"] for m in sent] == ["question"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"message": ""}, 400, "blank"),
        ({}, 400, "required"),
        ({"message": "hi", "model": "no-such-model"}, 400, "model_not_found"),
        ({"message": "hi", "temperature": 9}, 400, "max_value"),
        ({"message": "hi", "template_id": 999999}, 404, "not_found"),
        ({"message": "hi", "conversation_id": 999999}, 404, "not_found"),
        ({"message": "x" * 101}, 413, "message_too_large"),
    ],
)
async def test_bad_input_is_a_json_error_before_any_stream(async_client, chat, settings, body, status, code):
    settings.MAX_MESSAGE_CHARS = 100
    response = await send(async_client, chat.headers, **({"model": "gpt-test"} | body))
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == code
    assert await Message.objects.acount() == 0
    assert await sync_to_async(chat.upstream.requests)() == []


async def test_a_disabled_model_is_refused(async_client, chat):
    chat.model.enabled = False
    await chat.model.asave()
    response = await send(async_client, chat.headers, message="hi", model="gpt-test")
    assert response.status_code == 400


async def test_someone_elses_conversation_is_404(async_client, chat, alice):
    conversation = await Conversation.objects.acreate(owner=alice, title="private")
    response = await send(async_client, chat.headers, message="hi", conversation_id=conversation.pk)
    assert response.status_code == 404
    assert await Message.objects.acount() == 0


async def test_anonymous_callers_cannot_send(async_client, chat):
    response = await async_client.post("/chat/send", {"message": "hi"}, content_type="application/json")
    assert response.status_code == 401
