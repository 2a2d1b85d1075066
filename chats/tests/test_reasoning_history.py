"""A reasoning model's thinking: streamed as `reasoning` events apart from the text, saved
beside the reply, returned by the messages, the history and a share link, and charged as
output."""

from __future__ import annotations

from decimal import Decimal

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from billing.models import UsageRecord
from chats.models import Message
from chats.routing import websocket_urlpatterns
from chats.tests.conftest import read_events, send

pytestmark = pytest.mark.django_db(transaction=True)

THINKING = "The user greets me. A short greeting back will do."
REPLY = "Hello there, friend."


@pytest.fixture(params=["openai", "anthropic"])
def thinker(request, chat):
    """A reasoning model of each wire format that streams thinking: OpenAI-compatible
    (DeepSeek's `reasoning_content`) and Anthropic (thinking blocks)."""
    chat.upstream.make_model(
        kind=request.param,
        name=f"thinker-{request.param}",
        context_window=8192,
        max_output_tokens=256,
        input_price_per_million=Decimal("1.00"),
        output_price_per_million=Decimal("2.00"),
    )
    chat.upstream.configure(reasoning=THINKING, reply=REPLY)
    chat.model_name = f"thinker-{request.param}"
    return chat


async def test_reasoning_streams_apart_from_the_text_and_is_saved_and_returned(async_client, thinker):
    response = await send(async_client, thinker.headers, message="Hi", model=thinker.model_name)
    events = await read_events(response)
    names = [event.event for event in events]
    assert names[0] == "start" and names[-1] == "done"
    reasoning = [event.data for event in events if event.event == "reasoning"]
    deltas = [event.data for event in events if event.event == "delta"]
    assert len(reasoning) > 1  # streamed as it came, not as one block at the end
    assert all(set(data) == {"content"} for data in reasoning)
    assert "".join(data["content"] for data in reasoning) == THINKING
    assert "".join(data["content"] for data in deltas) == REPLY  # no thinking mixed into the text
    assert names.index("reasoning") < names.index("delta")

    reply_id, conversation_id = events[0].data["message_id"], events[0].data["conversation_id"]
    reply = await Message.objects.aget(pk=reply_id)
    assert (reply.reasoning, reply.content) == (THINKING, REPLY)

    messages = (
        await async_client.get(f"/chat/conversations/{conversation_id}/messages", headers=thinker.headers)
    ).json()["results"]
    assert [(m["role"], m["reasoning"]) for m in messages] == [("user", ""), ("assistant", THINKING)]
    history = (await async_client.get("/chat/history", headers=thinker.headers)).json()["results"][0]
    assert history["messages"][-1]["reasoning"] == THINKING
    token = (
        await async_client.post(f"/chat/conversations/{conversation_id}/share", headers=thinker.headers)
    ).json()["token"]
    shared = (await async_client.get(f"/chat/shared/{token}")).json()
    assert shared["messages"][-1]["reasoning"] == THINKING


async def test_reasoning_tokens_are_charged_as_output(async_client, thinker):
    events = await read_events(
        await send(async_client, thinker.headers, message="Hi", model=thinker.model_name)
    )
    # The fake counts a token a word, as the providers count thinking among the output.
    output_tokens = len(THINKING.split()) + len(REPLY.split())
    assert events[-1].data["usage"]["output_tokens"] == output_tokens
    record = await UsageRecord.objects.aget()
    assert record.output_tokens == output_tokens
    assert (
        record.cost == (record.input_tokens * Decimal("1.00") + output_tokens * Decimal("2.00")) / 1_000_000
    )


async def test_reasoning_reaches_the_websocket_as_its_own_frames(thinker):
    token = thinker.headers["Authorization"].removeprefix("Bearer ")
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/chat?token={token}")
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "send", "message": "Hi", "model": thinker.model_name})
    frames: list[dict] = []
    while not frames or frames[-1]["type"] not in ("done", "error"):
        frames.append(await communicator.receive_json_from(timeout=5))
    await communicator.disconnect()
    reasoning = [frame for frame in frames if frame["type"] == "reasoning"]
    assert all(set(frame) == {"type", "id", "content"} for frame in reasoning)
    assert "".join(frame["content"] for frame in reasoning) == THINKING
    assert "".join(frame["content"] for frame in frames if frame["type"] == "delta") == REPLY
    assert frames[-1]["type"] == "done"
