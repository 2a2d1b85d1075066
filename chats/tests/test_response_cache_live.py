"""The response cache through a live server: an identical temperature-0 request to a model
with the cache on is replayed, on every surface, and never reaches the provider twice."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from accounts.services import api_key_create
from billing.models import UsageRecord

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


@pytest.fixture
def cached(module_server, chat):
    chat.upstream.make_model(kind="openai", name="gpt-cached", cache_enabled=True)
    _key, secret = api_key_create(user=chat.user, name="sdk")
    chat.url = module_server.url
    chat.client = openai.OpenAI(base_url=f"{module_server.url}/v1", api_key=secret, max_retries=0, timeout=10)
    chat.upstream.configure(reply="Cached words, once.")
    return chat


def _records(count: int) -> list[UsageRecord]:
    deadline = time.monotonic() + 5
    while UsageRecord.objects.count() < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(UsageRecord.objects.order_by("id"))


QUESTION = [{"role": "user", "content": "Say it once."}]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_an_identical_gateway_call_is_replayed_from_the_cache(cached, stream):
    texts = []
    for _ in range(2):
        reply = cached.client.chat.completions.create(
            model="gpt-cached", messages=QUESTION, temperature=0, stream=stream
        )
        if stream:
            texts.append("".join(chunk.choices[0].delta.content or "" for chunk in reply if chunk.choices))
        else:
            texts.append(reply.choices[0].message.content)
    assert texts == ["Cached words, once."] * 2
    assert len(cached.upstream.requests()) == 1
    first, second = _records(2)
    assert (first.cached, second.cached) == (False, True)


def test_an_identical_chat_send_is_replayed_too(cached):
    headers = cached.headers
    for _ in range(2):
        with httpx.stream(
            "POST",
            f"{cached.url}/chat/send",
            json={"message": "Say it once.", "model": "gpt-cached", "temperature": 0},
            headers=headers,
            timeout=10,
        ) as response:
            body = response.read().decode()
        assert "event: done" in body
    assert len(cached.upstream.requests()) == 1
    assert [record.cached for record in _records(2)] == [False, True]
