"""The demo provider streams a helpful reply with no network and nothing configured."""

from __future__ import annotations

import asyncio

import pytest

from llm.models import Model, Provider
from llm.selectors import route_get
from llm.services import stream_chat
from llm.types import ChatMessage, ChatRequest, Finish, Served, TextDelta, Usage

pytestmark = pytest.mark.django_db


async def collect(stream):
    return [event async for event in stream]


def make_demo(**fields) -> Model:
    provider = Provider.objects.create(name="demo", kind="demo")
    return Model.objects.create(provider=provider, name="demo", upstream_name="demo", **fields)


def ask(text: str, **fields) -> ChatRequest:
    return ChatRequest(messages=(ChatMessage(role="user", content=text),), **fields)


def test_it_streams_served_then_text_then_usage_then_finish(settings):
    settings.LLM_DEMO_TOKEN_DELAY = 0
    make_demo()

    events = asyncio.run(collect(stream_chat(route_get(name="demo"), ask("What can you do?"))))

    assert isinstance(events[0], Served)
    assert events[0].target.name == "demo"
    assert not events[0].cached
    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert len(deltas) > 10
    assert "demo model" in "".join(delta.text for delta in deltas)
    assert events[-2] == Usage(
        input_tokens=events[-2].input_tokens, output_tokens=events[-2].output_tokens, estimated=True
    )
    assert events[-2].input_tokens > 0 and events[-2].output_tokens > 0
    assert events[-1] == Finish("stop")


def test_it_quotes_the_question_and_gives_the_same_reply_to_the_same_question(settings):
    settings.LLM_DEMO_TOKEN_DELAY = 0
    make_demo()
    route = route_get(name="demo")

    first = asyncio.run(collect(stream_chat(route, ask("Tell me a joke"))))
    second = asyncio.run(collect(stream_chat(route, ask("Tell me a joke"))))

    text = "".join(event.text for event in first if isinstance(event, TextDelta))
    assert text.startswith("You said: “Tell me a joke”")
    assert first == second


def test_it_stops_at_max_tokens_with_finish_reason_length(settings):
    settings.LLM_DEMO_TOKEN_DELAY = 0
    make_demo()

    events = asyncio.run(collect(stream_chat(route_get(name="demo"), ask("Hi", max_tokens=5))))

    assert len([event for event in events if isinstance(event, TextDelta)]) == 5
    assert events[-1] == Finish("length")


def test_its_pace_comes_from_the_models_token_delay(settings):
    settings.LLM_DEMO_TOKEN_DELAY = 10  # would time the test out if it were used
    make_demo(default_params={"token_delay": 0})

    events = asyncio.run(collect(stream_chat(route_get(name="demo"), ask("Hi"))))

    assert events[-1] == Finish("stop")
