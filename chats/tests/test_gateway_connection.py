"""The /v1 connection as clients live it: streaming clients of every kind, a client that goes
away, upstream errors in OpenAI's words, and a provider that ignores the token limit."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from accounts.services import api_key_create
from billing.models import UsageRecord

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


@pytest.fixture
def gateway(module_server, chat):
    _key, secret = api_key_create(user=chat.user, name="sdk")
    chat.url = module_server.url
    chat.auth = {"Authorization": f"Bearer {secret}"}
    chat.client = openai.OpenAI(base_url=f"{module_server.url}/v1", api_key=secret, max_retries=0, timeout=10)
    return chat


def _record(timeout: float = 5.0) -> UsageRecord:
    deadline = time.monotonic() + timeout
    while (record := UsageRecord.objects.first()) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert record is not None, "no usage record was written"
    return record


def _body(**fields):
    return {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], **fields}


@pytest.mark.parametrize("accept", ["text/event-stream", "*/*", None, "application/json, text/event-stream"])
def test_a_stream_is_served_whatever_the_client_accepts(gateway, accept):
    gateway.upstream.configure(reply="streamed fine")
    headers = {**gateway.auth, **({"Accept": accept} if accept else {})}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=_body(stream=True), headers=headers, timeout=10
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    text = "".join(
        choice["delta"].get("content") or ""
        for line in lines[:-1]
        for choice in json.loads(line[6:])["choices"]
    )
    assert text == "streamed fine"


def test_a_streaming_client_that_goes_away_stops_the_turn_and_pays_for_what_was_sent(gateway):
    gateway.upstream.configure(tokens=200, token_delay=0.02)
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json=_body(stream=True),
        headers=gateway.auth,
        timeout=10,
    ) as response:
        received = 0
        for line in response.iter_lines():
            if '"content": "' in line and '"content": ""' not in line:
                received += 1
            if received == 10:
                break
    gone = time.monotonic()
    requests = gateway.upstream.wait_for(lambda seen: bool(seen) and seen[-1]["closed_by_client"], timeout=5)
    assert requests[-1]["closed_by_client"], "the upstream connection stayed open"
    assert time.monotonic() - gone < 1.0
    sent = requests[-1]["tokens_sent"]
    assert 10 <= sent < 200
    record = _record()
    assert record.outcome == "stopped"
    # Each fake word ("word17") estimates at two tokens; the charge is for what came, not 200 words.
    assert 10 <= record.output_tokens <= 2 * sent


def test_a_waiting_client_that_goes_away_stops_the_turn(gateway):
    gateway.upstream.configure(tokens=200, token_delay=0.02)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gateway.url}/v1/chat/completions", json=_body(), headers=gateway.auth, timeout=0.5)
    gone = time.monotonic()
    requests = gateway.upstream.wait_for(lambda seen: bool(seen) and seen[-1]["closed_by_client"], timeout=5)
    assert requests[-1]["closed_by_client"]
    assert time.monotonic() - gone < 1.0
    assert requests[-1]["tokens_sent"] < 200
    assert _record().outcome == "stopped"


def test_an_upstream_429_is_a_429_with_the_providers_retry_after(gateway):
    # Longer than Nexus waits between retries: it gives up at once and passes the wait on.
    gateway.upstream.configure(error_status=429, retry_after=30)
    with pytest.raises(openai.RateLimitError) as error:
        gateway.client.chat.completions.create(**_body())
    assert error.value.status_code == 429
    assert error.value.code == "rate_limit_exceeded"
    assert error.value.response.headers["retry-after"] == "30"


def test_a_context_overflow_has_openais_code(gateway):
    gateway.upstream.configure(error_status=400, context_length=True)
    with pytest.raises(openai.BadRequestError) as error:
        gateway.client.chat.completions.create(**_body())
    assert error.value.code == "context_length_exceeded"


def test_one_model_can_be_fetched_by_its_id(gateway):
    model = gateway.client.models.retrieve("gpt-test")
    assert (model.id, model.object) == ("gpt-test", "model")
    with pytest.raises(openai.NotFoundError) as error:
        gateway.client.models.retrieve("gpt-nope")
    assert error.value.code == "model_not_found"


def test_a_provider_that_ignores_the_token_limit_is_cut_there(gateway):
    gateway.upstream.configure(tokens=60, ignore_max_tokens=True)
    completion = gateway.client.chat.completions.create(**_body(max_tokens=5))
    assert completion.choices[0].message.content == "word1 word2 word3 word4 word5"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 5
    record = _record()
    assert record.output_tokens == 5


def test_a_streamed_reply_past_the_models_maximum_is_cut_there_too(gateway):
    gateway.upstream.make_model(kind="openai", name="small-output", max_output_tokens=4)
    gateway.upstream.configure(tokens=30, ignore_max_tokens=True)
    stream = gateway.client.chat.completions.create(
        model="small-output",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "word1 word2 word3 word4"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "length"
    ]
    assert chunks[-1].usage.completion_tokens == 4
