"""/v1/messages and /v1/messages/count_tokens, driven by the official `anthropic` SDK against a
live server, with models of every provider kind behind them."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.services import api_key_create
from billing.models import UsageRecord
from billing.services import api_key_quota_set
from chats.messages_api import parse_messages_request
from chats.models import Conversation
from chats.tests.conftest import bearer
from chats.tests.samples import PIXEL
from nexus.lib.errors import ApiError

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

KINDS = ["gpt-test", "compat-test", "claude-test", "gemini-test"]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
HI: Any = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def gateway(module_server, chat):
    """A live server, an API key of the chat user, a model of each provider kind, and an SDK client."""
    chat.upstream.make_model(kind="openai_compatible", name="compat-test", max_output_tokens=256)
    chat.upstream.make_model(kind="anthropic", name="claude-test", max_output_tokens=256)
    chat.upstream.make_model(kind="gemini", name="gemini-test", max_output_tokens=256)
    chat.upstream.make_model(
        kind="demo", name="demo-test", max_output_tokens=256, default_params={"token_delay": 0}
    )
    key, secret = api_key_create(user=chat.user, name="claude-code")
    chat.key, chat.secret, chat.url = key, secret, module_server.url
    chat.client = _x_api_key_client(module_server.url, secret)
    return chat


def _x_api_key_client(url: str, secret: str) -> Any:
    """A client that sends its key as `x-api-key`, as Claude Code and the SDKs before 2026 do
    (this SDK sends `api_key` as a Bearer token)."""
    return anthropic.Anthropic(
        base_url=url, api_key=None, default_headers={"x-api-key": secret}, max_retries=0, timeout=10
    )


def _last_body(gateway) -> dict[str, Any]:
    return gateway.upstream.requests()[-1]["body"]


def _sent(gateway) -> str:
    return json.dumps(_last_body(gateway))


def _error(raised: pytest.ExceptionInfo[anthropic.APIStatusError]) -> dict[str, Any]:
    """The error body the SDK read, in Anthropic's shape."""
    body = raised.value.body
    assert isinstance(body, dict)
    return body


def _raw(gateway, path: str, body: Any, **headers: str) -> httpx.Response:
    headers = {"x-api-key": gateway.secret, "anthropic-version": "2023-06-01", **headers}
    return httpx.post(f"{gateway.url}{path}", json=body, headers=headers, timeout=10)


# --- one message -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", KINDS)
def test_a_message_is_what_the_upstream_sent(gateway, model):
    gateway.upstream.configure(reply="Bonjour, le monde")
    message = gateway.client.messages.create(model=model, max_tokens=100, system="Be French.", messages=HI)
    assert message.id.startswith("msg_")
    assert (message.type, message.role, message.model) == ("message", "assistant", model)
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Bonjour, le monde"
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.output_tokens == 3
    record = UsageRecord.objects.get()
    assert (record.input_tokens, record.output_tokens) == (
        message.usage.input_tokens,
        message.usage.output_tokens,
    )
    assert (record.api_key_id, record.model_name) == (gateway.key.pk, model)
    assert "Be French." in _sent(gateway)


def test_a_message_is_charged_at_the_models_prices(gateway):
    gateway.upstream.configure(reply="one two three four")
    message = gateway.client.messages.create(model="gpt-test", max_tokens=100, messages=HI)
    record = UsageRecord.objects.get()
    expected = (
        Decimal(message.usage.input_tokens) * Decimal("1.00")
        + Decimal(message.usage.output_tokens) * Decimal("2.00")
    ) / 1_000_000
    assert record.cost == expected > 0
    usage = httpx.get(f"{gateway.url}/billing/usage", headers=bearer(gateway.user), timeout=10).json()
    assert usage["results"][0]["calls"] == 1
    assert Decimal(usage["results"][0]["cost"]) == record.cost


def test_x_nexus_save_keeps_the_exchange_as_a_conversation(gateway):
    gateway.upstream.configure(reply="Saved words.")
    response = _raw(
        gateway,
        "/v1/messages",
        {"model": "gpt-test", "max_tokens": 10, "messages": HI},
        **{"X-Nexus-Save": "true"},
    )
    conversation = Conversation.objects.get(pk=response.headers["x-nexus-conversation-id"])
    assert [(m.role, m.content) for m in conversation.messages.order_by("id")] == [
        ("user", "Hi"),
        ("assistant", "Saved words."),
    ]


def test_the_demo_model_answers_too(gateway):
    message = gateway.client.messages.create(model="demo-test", max_tokens=200, messages=HI)
    assert "Hi" in message.content[0].text
    assert UsageRecord.objects.get().output_tokens == message.usage.output_tokens > 0


def test_max_tokens_reaches_the_upstream_and_a_cut_reply_says_max_tokens(gateway):
    gateway.upstream.configure(tokens=50)
    message = gateway.client.messages.create(model="claude-test", max_tokens=5, messages=HI)
    assert message.stop_reason == "max_tokens"
    assert _last_body(gateway)["max_tokens"] == 5


def test_the_sampling_parameters_and_the_user_reach_the_upstream(gateway):
    gateway.upstream.configure(reply="ok")
    gateway.client.messages.create(
        model="claude-test",
        max_tokens=50,
        messages=HI,
        extra_body={"temperature": 0.3, "top_p": 0.9},  # the SDK's create no longer takes them
        stop_sequences=["END"],
        metadata={"user_id": "user-7"},
    )
    body = _last_body(gateway)
    assert (body["temperature"], body["top_p"], body["stop_sequences"]) == (0.3, 0.9, ["END"])
    assert body["metadata"] == {"user_id": "user-7"}
    gateway.client.messages.create(
        model="gpt-test", max_tokens=50, messages=HI, stop_sequences=["END"], metadata={"user_id": "user-7"}
    )
    body = _last_body(gateway)
    assert (body["stop"], body["user"]) == (["END"], "user-7")


def test_top_k_reaches_the_kinds_that_sample_with_it_and_is_dropped_for_openai(gateway):
    gateway.upstream.configure(reply="ok")

    def sent_top_k(model: str) -> Any:
        response = gateway.client.messages.with_raw_response.create(
            model=model, max_tokens=50, messages=HI, extra_body={"top_k": 40}
        )
        body = _last_body(gateway)
        return body.get("generationConfig", body).get("topK" if model == "gemini-test" else "top_k"), (
            response.headers.get("x-nexus-dropped-params")
        )

    assert sent_top_k("claude-test") == (40, None)
    assert sent_top_k("gemini-test") == (40, None)
    assert sent_top_k("compat-test") == (40, None)  # vLLM, Ollama and the like sample with it
    assert sent_top_k("gpt-test") == (None, "top_k")  # OpenAI's API has no top_k


# --- streaming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [*KINDS, "demo-test"])
def test_a_streamed_message_arrives_in_anthropics_event_sequence(gateway, model):
    gateway.upstream.configure(reply="one two three", token_delay=0.002)
    events = list(gateway.client.messages.create(model=model, max_tokens=100, messages=HI, stream=True))
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start"
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert events[0].message.id.startswith("msg_") and events[0].message.content == []
    text = "".join(event.delta.text for event in events if event.type == "content_block_delta")
    if model != "demo-test":
        assert text == "one two three"
    end = events[-2]
    assert end.delta.stop_reason == "end_turn"
    assert end.usage.output_tokens == UsageRecord.objects.get().output_tokens


def test_the_sdks_stream_helper_puts_the_message_together(gateway):
    gateway.upstream.configure(reply="Hello there", token_delay=0.002)
    with gateway.client.messages.stream(model="claude-test", max_tokens=100, messages=HI) as stream:
        assert "".join(stream.text_stream) == "Hello there"
        final = stream.get_final_message()
    assert final.content[0].text == "Hello there"
    record = UsageRecord.objects.get()
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        record.input_tokens,
        record.output_tokens,
    )


@pytest.mark.parametrize("model", ["gpt-test", "claude-test", "gemini-test"])
def test_thinking_streams_as_thinking_deltas_before_the_text(gateway, model):
    gateway.upstream.make_model(kind="openai", name="gpt-reasoner", supports_reasoning=True)
    name = "gpt-reasoner" if model == "gpt-test" else model
    if model != "gpt-test":
        from llm.models import Model

        Model.objects.filter(name=model).update(supports_reasoning=True)
    gateway.upstream.configure(reasoning="Let me think.", reply="Forty-two.")
    with gateway.client.messages.stream(
        model=name,
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "The answer?"}],
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    deltas = [event.delta.type for event in events if event.type == "content_block_delta"]
    assert deltas[0] == "thinking_delta" and deltas[-1] == "text_delta"
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert (final.content[0].thinking, final.content[1].text) == ("Let me think.", "Forty-two.")
    body = _last_body(gateway)
    if model == "gpt-test":
        assert body["reasoning_effort"] == "low"  # a budget of 2,048 tokens
    elif model == "claude-test":
        assert body["output_config"] == {"effort": "low"}


def test_thinking_on_a_model_that_does_not_reason_is_refused(gateway):
    with pytest.raises(anthropic.BadRequestError) as error:
        gateway.client.messages.create(
            model="gpt-test",
            max_tokens=4000,
            thinking={"type": "enabled", "budget_tokens": 2048},
            messages=HI,
        )
    assert _error(error)["error"]["type"] == "invalid_request_error"
    assert "reasoning" in _error(error)["error"]["message"]
    assert gateway.upstream.requests() == []


def test_a_thinking_block_sent_back_is_dropped(gateway):
    gateway.upstream.configure(reply="Sure.")
    gateway.client.messages.create(
        model="claude-test",
        max_tokens=100,
        messages=[
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Hmm.", "signature": ""},
                    {"type": "text", "text": "Hello."},
                ],
            },
            {"role": "user", "content": "Again"},
        ],
    )
    assert [message["role"] for message in _last_body(gateway)["messages"]] == ["user", "assistant", "user"]
    assert "Hmm." not in _sent(gateway)


# --- tools -------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", KINDS)
def test_a_tool_round_trip(gateway, model):
    gateway.upstream.configure(
        reply="", tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}]
    )
    question = {"role": "user", "content": "Weather in Paris?"}
    message = gateway.client.messages.create(
        model=model, max_tokens=100, tools=[WEATHER], messages=[question]
    )
    assert message.stop_reason == "tool_use"
    (call,) = [block for block in message.content if block.type == "tool_use"]
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"})
    assert call.id

    gateway.upstream.configure(reply="It is sunny in Paris.", tool_calls=None)
    answer = gateway.client.messages.create(
        model=model,
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            question,
            {"role": "assistant", "content": [block.model_dump() for block in message.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": '{"sky": "sunny"}'}],
            },
        ],
    )
    assert answer.content[0].text == "It is sunny in Paris."
    assert answer.stop_reason == "end_turn"
    sent = _sent(gateway)
    assert "get_weather" in sent and "sunny" in sent
    body = _last_body(gateway)
    if model in ("gpt-test", "compat-test"):
        assert body["messages"][1]["tool_calls"][0]["id"] == call.id
        assert body["messages"][2]["role"] == "tool"
    elif model == "claude-test":
        assert body["messages"][2]["content"][0]["type"] == "tool_result"
    else:
        assert "functionResponse" in json.dumps(body["contents"][2])
    assert UsageRecord.objects.count() == 2


def test_a_streamed_tool_call_arrives_as_input_json_deltas(gateway):
    gateway.upstream.configure(
        reply="Let me look.", tool_calls=[{"name": "get_weather", "arguments": '{"city": "Oslo"}'}]
    )
    with gateway.client.messages.stream(
        model="gpt-test", max_tokens=100, tools=[WEATHER], messages=[{"role": "user", "content": "Oslo?"}]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    starts = [event.content_block.type for event in events if event.type == "content_block_start"]
    assert starts == ["text", "tool_use"]
    fragments = [
        event.delta.partial_json
        for event in events
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta"
    ]
    assert json.loads("".join(fragments)) == {"city": "Oslo"}
    assert [block.type for block in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"city": "Oslo"} and final.stop_reason == "tool_use"


def test_tool_choice_and_disabled_parallel_use_reach_the_upstream(gateway):
    gateway.upstream.configure(
        reply="", tool_calls=[{"name": "get_weather", "arguments": '{"city": "Rome"}'}]
    )
    gateway.client.messages.create(
        model="claude-test",
        max_tokens=100,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        messages=HI,
    )
    assert _last_body(gateway)["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
        "disable_parallel_tool_use": True,
    }
    gateway.client.messages.create(
        model="gpt-test", max_tokens=100, tools=[WEATHER], tool_choice={"type": "any"}, messages=HI
    )
    assert _last_body(gateway)["tool_choice"] == "required"


def test_a_tool_error_reaches_the_model_as_an_error(gateway):
    gateway.upstream.configure(reply="Sorry.")
    gateway.client.messages.create(
        model="gpt-test",
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "is_error": True,
                        "content": [{"type": "text", "text": "service down"}],
                    },
                    {"type": "text", "text": "Try again?"},
                ],
            },
        ],
    )
    messages = _last_body(gateway)["messages"]
    assert messages[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: service down"}
    assert messages[3]["role"] == "user" and "Try again?" in json.dumps(messages[3])


def test_a_model_without_tools_refuses_them(gateway):
    gateway.upstream.make_model(kind="openai", name="no-tools", supports_tools=False)
    with pytest.raises(anthropic.BadRequestError) as error:
        gateway.client.messages.create(model="no-tools", max_tokens=100, tools=[WEATHER], messages=HI)
    assert "tools" in _error(error)["error"]["message"]
    assert gateway.upstream.requests() == []


# --- images and documents ----------------------------------------------------------------------


@pytest.mark.parametrize("model", KINDS)
def test_images_reach_each_provider(gateway, model):
    gateway.upstream.configure(reply="A pixel.")
    message = gateway.client.messages.create(
        model=model,
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
    )
    assert message.content[0].text == "A pixel."
    body = _last_body(gateway)
    assert "https://example.com/cat.jpg" in json.dumps(body)
    if model == "gemini-test":
        inline = body["contents"][0]["parts"][1]["inlineData"]
        assert base64.urlsafe_b64decode(inline["data"]) == base64.b64decode(PIXEL)
    else:
        assert PIXEL in json.dumps(body)


def test_a_model_without_vision_refuses_an_image_naming_the_block(gateway):
    gateway.upstream.make_model(kind="openai", name="text-only", supports_vision=False)
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}
    with pytest.raises(anthropic.BadRequestError) as error:
        gateway.client.messages.create(
            model="text-only", max_tokens=100, messages=[{"role": "user", "content": [image]}]
        )
    assert _error(error)["error"]["type"] == "invalid_request_error"
    assert "images" in _error(error)["error"]["message"]
    assert gateway.upstream.requests() == []


def test_a_pdf_document_reaches_anthropic_as_a_document(gateway):
    gateway.upstream.configure(reply="A PDF.")
    pdf = base64.b64encode(b"%PDF-1.4 fake").decode()
    gateway.client.messages.create(
        model="claude-test",
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "Notes."},
                    },
                    {"type": "text", "text": "Summarize."},
                ],
            }
        ],
    )
    blocks = _last_body(gateway)["messages"][0]["content"]
    assert blocks[0]["type"] == "document" and blocks[0]["source"]["data"] == pdf
    assert {"type": "text", "text": "Notes."} in blocks


# --- count_tokens ------------------------------------------------------------------------------


def test_count_tokens_estimates_without_calling_or_charging(gateway):
    counted = gateway.client.messages.count_tokens(
        model="claude-test",
        system="Be brief.",
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Hi there"}],
    )
    shorter = gateway.client.messages.count_tokens(model="claude-test", messages=HI)
    assert counted.input_tokens > shorter.input_tokens > 0
    assert gateway.upstream.requests() == []
    assert not UsageRecord.objects.exists()


def test_count_tokens_needs_a_key_and_a_known_model(gateway):
    with pytest.raises(anthropic.NotFoundError) as error:
        gateway.client.messages.count_tokens(model="nope", messages=HI)
    assert _error(error)["error"]["type"] == "not_found_error"
    stranger = _x_api_key_client(gateway.url, "nx-not-a-key")
    with pytest.raises(anthropic.AuthenticationError):
        stranger.messages.count_tokens(model="claude-test", messages=HI)
    response = _raw(
        gateway, "/v1/messages/count_tokens", {"model": "claude-test", "messages": HI, "max_tokens": 5}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "max_tokens: Extra inputs are not permitted"


# --- authentication ----------------------------------------------------------------------------


def test_a_key_works_as_x_api_key_and_as_a_bearer_token_and_so_does_a_jwt(gateway):
    gateway.upstream.configure(reply="Hi.")
    by_bearer: Any = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.secret, max_retries=0)
    token = bearer(gateway.user)["Authorization"].removeprefix("Bearer ")
    by_jwt: Any = anthropic.Anthropic(base_url=gateway.url, auth_token=token, max_retries=0)
    for client in (gateway.client, by_bearer, by_jwt):
        assert client.messages.create(model="gpt-test", max_tokens=10, messages=HI).content[0].text == "Hi."
    only_x_api_key = _raw(gateway, "/v1/messages", {"model": "gpt-test", "max_tokens": 10, "messages": HI})
    assert only_x_api_key.status_code == 200
    records = list(UsageRecord.objects.order_by("id").values_list("api_key_id", flat=True))
    assert records == [gateway.key.pk, gateway.key.pk, None, gateway.key.pk]


def test_anthropic_version_and_beta_headers_are_accepted(gateway):
    gateway.upstream.configure(reply="Hi.")
    response = _raw(
        gateway,
        "/v1/messages",
        {"model": "gpt-test", "max_tokens": 10, "messages": HI},
        **{"anthropic-beta": "interleaved-thinking-2025-05-14", "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 200
    assert response.json()["content"][0]["text"] == "Hi."
    assert response.headers["request-id"].startswith("req_")


@pytest.mark.parametrize("secret", ["nx-not-a-key", "sk-ant-api03-elsewhere"])
def test_a_bad_key_is_a_401_in_anthropics_shape(gateway, secret):
    client = _x_api_key_client(gateway.url, secret)
    with pytest.raises(anthropic.AuthenticationError) as error:
        client.messages.create(model="gpt-test", max_tokens=10, messages=HI)
    assert error.value.status_code == 401
    assert _error(error) == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "This API key is not valid."},
    }
    assert gateway.upstream.requests() == []


def test_no_credentials_is_a_401_in_anthropics_shape(gateway):
    response = httpx.post(f"{gateway.url}/v1/messages", json={}, timeout=10)
    assert response.status_code == 401
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "authentication_error"


# --- admission and failures --------------------------------------------------------------------


def test_a_key_over_its_budget_gets_a_429_in_anthropics_shape(gateway):
    api_key_quota_set(api_key=gateway.key, monthly_budget=Decimal("0.000001"))
    with pytest.raises(anthropic.RateLimitError) as error:
        gateway.client.messages.create(model="gpt-test", max_tokens=100, messages=HI)
    assert error.value.status_code == 429
    assert _error(error)["type"] == "error"
    assert _error(error)["error"]["type"] == "rate_limit_error"
    assert _error(error)["error"]["message"].startswith("The budget is spent")
    assert gateway.upstream.requests() == []
    assert not UsageRecord.objects.exists()


def test_an_unknown_model_is_a_404_not_found_error(gateway):
    with pytest.raises(anthropic.NotFoundError) as error:
        gateway.client.messages.create(model="claude-nope", max_tokens=10, messages=HI)
    assert _error(error)["error"]["type"] == "not_found_error"


def test_an_upstream_that_is_down_is_a_529_overloaded_error(gateway):
    gateway.upstream.configure(error_status=503)
    with pytest.raises(anthropic.APIStatusError) as error:
        gateway.client.messages.create(model="gpt-test", max_tokens=10, messages=HI)
    assert error.value.status_code == 529
    assert _error(error)["error"]["type"] == "overloaded_error"


def test_an_upstream_rate_limit_is_a_429_with_retry_after(gateway):
    # Longer than Nexus waits between retries: it gives up at once and passes the wait on.
    gateway.upstream.configure(error_status=429, retry_after=30)
    with pytest.raises(anthropic.RateLimitError) as error:
        gateway.client.messages.create(model="claude-test", max_tokens=10, messages=HI)
    assert error.value.response.headers["retry-after"] == "30"
    assert _error(error)["error"]["type"] == "rate_limit_error"


def test_a_failure_mid_stream_is_an_error_event(gateway):
    gateway.upstream.configure(reply="one two three four five", stream_error_after=2)
    seen = []
    with pytest.raises(anthropic.APIStatusError) as error:
        for event in gateway.client.messages.create(
            model="gpt-test", max_tokens=100, messages=HI, stream=True
        ):
            seen.append(event.type)
    assert "content_block_delta" in seen and "message_stop" not in seen
    assert _error(error)["type"] == "error"
    assert _error(error)["error"]["type"] in ("api_error", "overloaded_error")
    assert UsageRecord.objects.get().output_tokens >= 2


# --- bad bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "gpt-test", "messages": HI}, "max_tokens: Field required"),
        ({"max_tokens": 10, "messages": HI}, "model: Field required"),
        ({"model": "gpt-test", "max_tokens": 10}, "messages: Field required"),
        ({"model": "gpt-test", "max_tokens": 0, "messages": HI}, "max_tokens: Input should be greater than"),
        ({"model": "gpt-test", "max_tokens": 10, "messages": []}, "messages: at least one message"),
        (
            {"model": "gpt-test", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]},
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            {"model": "gpt-test", "max_tokens": 10, "messages": HI, "temperature": 1.5},
            "temperature: Input should be a number from 0 to 1",
        ),
        (
            {"model": "gpt-test", "max_tokens": 10, "messages": HI, "n": 2},
            "n: Extra inputs are not permitted",
        ),
        (
            {
                "model": "gpt-test",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": [{"type": "video"}]}],
            },
            "messages.0.content.0.type",
        ),
        (
            {
                "model": "gpt-test",
                "max_tokens": 10,
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}
                ],
            },
            "unexpected `tool_use_id`",
        ),
        (
            {
                "model": "gpt-test",
                "max_tokens": 10,
                "messages": [
                    {"role": "user", "content": "Paris?"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                    },
                    {"role": "user", "content": "never mind"},
                ],
            },
            "`tool_use` ids were found without `tool_result` blocks",
        ),
        (
            {"model": "gpt-test", "max_tokens": 10, "messages": HI, "tools": [{"name": "f"}]},
            "tools.0.input_schema: Field required",
        ),
        (
            {"model": "gpt-test", "max_tokens": 10, "messages": HI, "tool_choice": {"type": "any"}},
            "tool_choice may only be specified while providing tools",
        ),
        (
            {
                "model": "gpt-test",
                "max_tokens": 2000,
                "messages": HI,
                "thinking": {"type": "enabled", "budget_tokens": 10},
            },
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            {
                "model": "gpt-test",
                "max_tokens": 2000,
                "messages": HI,
                "thinking": {"type": "enabled", "budget_tokens": 4000},
            },
            "`max_tokens` must be greater than `thinking.budget_tokens`",
        ),
        (
            {
                "model": "gpt-test",
                "max_tokens": 10,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/tiff", "data": PIXEL},
                            }
                        ],
                    }
                ],
            },
            "messages.0.content.0.source.media_type",
        ),
        (
            {
                "model": "gpt-test",
                "max_tokens": 10,
                "messages": HI,
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "tools.0.type",
        ),
    ],
)
def test_a_bad_body_is_a_400_invalid_request_error(gateway, body, message):
    response = _raw(gateway, "/v1/messages", body)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]
    assert gateway.upstream.requests() == []
    assert not UsageRecord.objects.exists()


def test_a_body_that_is_not_json_is_a_400(gateway):
    response = httpx.post(
        f"{gateway.url}/v1/messages",
        content=b"{not json",
        headers={"x-api-key": gateway.secret, "content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_an_inline_image_over_the_limit_is_a_413(settings):
    settings.MAX_IMAGE_BYTES = 1024
    big = base64.b64encode(bytes(4096)).decode()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": big}}
    with pytest.raises(ApiError) as error:
        parse_messages_request(
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [image]}]}
        )
    assert error.value.status_code == 413


# --- whatever a client sends -------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
_block = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "x"]
        )
    },
    optional={
        "text": _json,
        "source": _json
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["base64", "url", "text", "content", "file"])},
            optional={"media_type": st.sampled_from(["image/png", "application/pdf"]) | _json, "data": _json},
        ),
        "id": _json,
        "name": _json,
        "input": _json,
        "tool_use_id": _json,
        "content": _json,
        "is_error": _json,
    },
)
_message = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(["user", "assistant", "system"]) | _json,
        "content": st.text(max_size=5) | st.lists(_block, max_size=3) | _json,
    },
)
_body = st.fixed_dictionaries(
    {"model": st.just("m") | _json, "messages": st.lists(_message, max_size=4) | _json},
    optional={
        name: _json
        for name in (
            "max_tokens",
            "system",
            "tools",
            "tool_choice",
            "stop_sequences",
            "temperature",
            "top_p",
            "top_k",
            "thinking",
            "metadata",
            "stream",
            "output_config",
        )
    },
)


@hypothesis_settings(max_examples=400, deadline=None)
@given(_body)
def test_any_body_a_client_sends_is_read_or_refused_with_a_4xx(body):
    try:
        parse_messages_request(body)
    except ApiError as refused:
        assert 400 <= refused.status_code < 500
