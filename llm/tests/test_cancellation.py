"""A consumer that stops reading, or is cancelled, closes the upstream connection."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from llm.selectors import route_get
from llm.services import stream_chat
from llm.tests.conftest import ask
from llm.types import TextDelta

pytestmark = pytest.mark.django_db


def closed_early(fake_upstream) -> dict:
    [request] = fake_upstream.wait_for(lambda requests: requests and requests[0]["closed_by_client"])
    return request


def test_closing_the_stream_closes_the_upstream_connection(fake_upstream, kind):
    fake_upstream.configure(tokens=200, token_delay=0.01)
    fake_upstream.make_model(kind=kind, name="m")
    route = route_get(name="m")

    async def read_three_words_then_stop() -> list[str]:
        words = []
        async with contextlib.aclosing(stream_chat(route, ask())) as stream:
            async for event in stream:
                if isinstance(event, TextDelta):
                    words.append(event.text)
                if len(words) == 3:
                    break
        return words

    assert asyncio.run(read_three_words_then_stop()) == ["word1", " word2", " word3"]
    request = closed_early(fake_upstream)
    assert request["closed_by_client"] and not request["completed"]
    assert request["tokens_sent"] < 200


def test_cancelling_the_consumer_closes_the_upstream_connection(fake_upstream, kind):
    fake_upstream.configure(tokens=200, token_delay=0.01)
    fake_upstream.make_model(kind=kind, name="m")
    route = route_get(name="m")

    async def cancel_after_the_first_word() -> None:
        first_word = asyncio.Event()

        async def consume() -> None:
            async for event in stream_chat(route, ask()):
                if isinstance(event, TextDelta):
                    first_word.set()

        task = asyncio.create_task(consume())
        await first_word.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_after_the_first_word())
    request = closed_early(fake_upstream)
    assert not request["completed"]
    assert request["tokens_sent"] < 200


def test_cancelling_while_waiting_for_the_first_token_closes_the_connection(fake_upstream):
    fake_upstream.configure(first_token_delay=10)
    fake_upstream.make_model(kind="anthropic", name="m")
    route = route_get(name="m")

    async def give_up_waiting() -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.3):
                async for _event in stream_chat(route, ask()):
                    pass

    asyncio.run(give_up_waiting())
    assert closed_early(fake_upstream)["tokens_sent"] == 0
