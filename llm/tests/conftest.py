"""Helpers of the llm tests: run a stream to its end, or until it fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from llm.selectors import route_get
from llm.services import stream_chat
from llm.types import ChatMessage, ChatRequest, LLMError, StreamEvent, TextDelta

ALL_KINDS = ("openai", "azure_openai", "deepseek", "openai_compatible", "anthropic", "gemini")


@dataclass
class Outcome:
    """What a consumer of stream_chat saw: the events, when each came, and the error, if any."""

    events: list[StreamEvent] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    error: LLMError | None = None

    @property
    def failure(self) -> LLMError:
        assert self.error is not None, "the stream did not fail"
        return self.error

    @property
    def text(self) -> str:
        return "".join(event.text for event in self.events if isinstance(event, TextDelta))

    def of(self, kind: type) -> list:
        return [event for event in self.events if isinstance(event, kind)]


async def consume(stream: AsyncIterator[StreamEvent]) -> Outcome:
    outcome = Outcome()
    try:
        async for event in stream:
            outcome.events.append(event)
            outcome.times.append(time.monotonic())
    except LLMError as error:
        outcome.error = error
    return outcome


def ask(text: str = "Hello there", *, system: str = "", **fields) -> ChatRequest:
    return ChatRequest(messages=(ChatMessage(role="user", content=text),), system=system, **fields)


def run(name: str, request: ChatRequest | None = None) -> Outcome:
    """Resolve `name` (a query) and stream `request` to it in a fresh event loop."""
    route = route_get(name=name)
    return asyncio.run(consume(stream_chat(route, request or ask())))


@pytest.fixture(params=ALL_KINDS)
def kind(request) -> str:
    return request.param
