"""What real OpenAI clients send beyond text, through /v1 with the official `openai` SDK:
tools, structured output, images, every parameter, reasoning, and each provider kind."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pydantic
import pytest

from accounts.services import api_key_create
from billing.models import UsageRecord
from chats.tests.samples import PIXEL

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

KINDS = ["gpt-test", "claude-test", "gemini-test"]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def gateway(module_server, chat):
    chat.upstream.make_model(kind="anthropic", name="claude-test", max_output_tokens=256)
    chat.upstream.make_model(kind="gemini", name="gemini-test", max_output_tokens=256)
    _key, secret = api_key_create(user=chat.user, name="sdk")
    chat.url = module_server.url
    chat.secret = secret
    chat.client = openai.OpenAI(base_url=f"{module_server.url}/v1", api_key=secret, max_retries=0, timeout=10)
    return chat


def _last_body(gateway):
    return gateway.upstream.requests()[-1]["body"]


# --- tools ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", KINDS)
def test_a_tool_call_comes_back_as_openai_sends_it(gateway, model):
    gateway.upstream.configure(
        reply="", tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}]
    )
    completion = gateway.client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id


@pytest.mark.parametrize("model", KINDS)
def test_a_streamed_tool_call_arrives_in_openai_deltas(gateway, model):
    gateway.upstream.configure(
        reply="", tool_calls=[{"name": "get_weather", "arguments": '{"city": "Oslo"}'}]
    )
    stream = gateway.client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=[WEATHER], stream=True
    )
    chunks = [chunk for chunk in stream if chunk.choices]
    fragments = [call for chunk in chunks for call in chunk.choices[0].delta.tool_calls or ()]
    assert fragments[0].id and fragments[0].type == "function" and fragments[0].function.name == "get_weather"
    assert all(fragment.index == 0 for fragment in fragments)
    assert all(fragment.id is None for fragment in fragments[1:])  # only the first names the call
    assert json.loads("".join(f.function.arguments or "" for f in fragments)) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["tool_calls"]


def test_the_sdks_stream_helper_puts_a_streamed_tool_call_together(gateway):
    gateway.upstream.configure(
        reply="", tool_calls=[{"name": "get_weather", "arguments": '{"city": "Rome"}'}]
    )
    with gateway.client.chat.completions.stream(
        model="gpt-test", messages=[{"role": "user", "content": "Rome?"}], tools=[WEATHER]
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.choices[0].message.tool_calls[0].function.arguments == '{"city": "Rome"}'


@pytest.mark.parametrize("model", KINDS)
def test_a_tool_round_trip_sends_the_result_back_to_each_provider(gateway, model):
    gateway.upstream.configure(reply="It is sunny in Paris.")
    completion = gateway.client.chat.completions.create(
        model=model,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny"}'},
        ],
    )
    assert completion.choices[0].message.content == "It is sunny in Paris."
    sent = json.dumps(_last_body(gateway))
    assert "get_weather" in sent and "sunny" in sent
    body = _last_body(gateway)
    if model == "gpt-test":
        assert body["messages"][1]["tool_calls"][0]["id"] == "call_1"
        assert body["messages"][2] == {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": '{"sky": "sunny"}',
        }
    elif model == "claude-test":
        assert body["messages"][1]["content"][-1]["type"] == "tool_use"
        assert body["messages"][2]["content"][0]["type"] == "tool_result"
        assert body["messages"][2]["content"][0]["tool_use_id"] == "call_1"
    else:
        assert "functionCall" in json.dumps(body["contents"][1])
        assert "functionResponse" in json.dumps(body["contents"][2])


def test_tool_choice_none_is_accepted_and_forwarded(gateway):
    gateway.upstream.configure(reply="No tools needed.")
    completion = gateway.client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER], tool_choice="none"
    )
    assert completion.choices[0].message.content == "No tools needed."
    assert _last_body(gateway)["tool_choice"] == "none"


def test_the_legacy_functions_come_back_as_a_function_call(gateway):
    gateway.upstream.configure(
        reply="", tool_calls=[{"name": "get_weather", "arguments": '{"city": "Lima"}'}]
    )
    completion = gateway.client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "Lima?"}],
        functions=[WEATHER["function"]],
        function_call="auto",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.function_call.name == "get_weather"
    assert json.loads(choice.message.function_call.arguments) == {"city": "Lima"}


def test_a_model_without_tools_refuses_them_naming_the_parameter(gateway):
    gateway.upstream.make_model(kind="openai", name="no-tools", supports_tools=False)
    with pytest.raises(openai.BadRequestError) as error:
        gateway.client.chat.completions.create(
            model="no-tools", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER]
        )
    assert (error.value.code, error.value.param) == ("model_not_capable", "tools")
    assert gateway.upstream.requests() == []


# --- structured output -------------------------------------------------------------------------


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.mark.parametrize("model", KINDS)
def test_parse_with_a_pydantic_schema_returns_the_object(gateway, model):
    gateway.upstream.configure(reply='{"name": "Lyon", "population": 522000}')
    completion = gateway.client.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "A French city"}], response_format=City
    )
    assert completion.choices[0].message.parsed == City(name="Lyon", population=522000)
    body = _last_body(gateway)
    if model == "gpt-test":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == "City"
    elif model == "claude-test":
        assert body["output_config"]["format"]["type"] == "json_schema"
    else:
        assert body["generationConfig"]["responseMimeType"] == "application/json"


def test_json_object_mode_is_forwarded(gateway):
    gateway.upstream.configure(reply='{"ok": true}')
    completion = gateway.client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "JSON please"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(completion.choices[0].message.content) == {"ok": True}
    assert _last_body(gateway)["response_format"] == {"type": "json_object"}


# --- images ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", KINDS)
def test_image_parts_reach_each_provider(gateway, model):
    gateway.upstream.configure(reply="A pixel.")
    completion = gateway.client.chat.completions.create(
        model=model,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
                    },
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "A pixel."
    body = _last_body(gateway)
    assert "https://example.com/cat.jpg" in json.dumps(body)
    if model == "gemini-test":
        # The SDK sends the bytes base64url-encoded; they are the image's bytes all the same.
        inline = body["contents"][0]["parts"][1]["inlineData"]
        assert base64.urlsafe_b64decode(inline["data"]) == base64.b64decode(PIXEL)
    else:
        assert PIXEL in json.dumps(body)


def test_a_model_without_vision_refuses_an_image_naming_the_part(gateway):
    gateway.upstream.make_model(kind="openai", name="text-only", supports_vision=False)
    with pytest.raises(openai.BadRequestError) as error:
        gateway.client.chat.completions.create(
            model="text-only",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hi"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                    ],
                }
            ],
        )
    assert (error.value.code, error.value.param) == ("model_not_capable", "messages[0].content[1]")
    assert gateway.upstream.requests() == []


def test_an_inline_image_over_the_limit_is_a_413_and_calls_nothing(gateway, start_server):
    server = start_server(MAX_IMAGE_BYTES="2048")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=gateway.secret, max_retries=0, timeout=10)
    big = base64.b64encode(bytes(4096)).decode()
    image: Any = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{big}"}}
    with pytest.raises(openai.APIStatusError) as error:
        client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": [image]}])
    assert error.value.status_code == 413
    assert (error.value.code, error.value.param) == (
        "image_too_large",
        "messages[0].content[0].image_url.url",
    )
    assert gateway.upstream.requests() == []
    assert not UsageRecord.objects.exists()


# --- parameters ------------------------------------------------------------------------------


def test_every_parameter_an_openai_model_takes_reaches_it(gateway):
    gateway.upstream.make_model(kind="openai", name="gpt-reasoner", supports_reasoning=True)
    gateway.upstream.configure(reply="ok")
    response = gateway.client.chat.completions.with_raw_response.create(
        model="gpt-reasoner",
        messages=[{"role": "user", "content": "hi"}],
        temperature=0.3,
        top_p=0.9,
        stop=["END"],
        seed=42,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        logit_bias={"50256": -100},
        reasoning_effort="low",
        verbosity="low",
        user="user-7",
        metadata={"app": "tests"},
        prompt_cache_key="cache-1",
        safety_identifier="hash-7",
        service_tier="auto",
        store=False,
        parallel_tool_calls=False,
        tools=[WEATHER],
        max_completion_tokens=50,
    )
    assert response.headers.get("x-nexus-dropped-params") is None
    body = _last_body(gateway)
    expected = {
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 42,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "logit_bias": {"50256": -100},
        "reasoning_effort": "low",
        "verbosity": "low",
        "user": "user-7",
        "metadata": {"app": "tests"},
        "prompt_cache_key": "cache-1",
        "safety_identifier": "hash-7",
        "service_tier": "auto",
        "parallel_tool_calls": False,
        "max_completion_tokens": 50,
    }
    assert {name: body.get(name) for name in expected} == expected


def test_anthropic_gets_temperature_and_top_p_and_the_rest_is_named_as_dropped(gateway):
    gateway.upstream.configure(reply="ok")
    response = gateway.client.chat.completions.with_raw_response.create(
        model="claude-test",
        messages=[{"role": "user", "content": "hi"}],
        temperature=0.2,
        top_p=0.8,
        seed=7,
        logit_bias={"1": 5},
        user="user-9",
    )
    assert response.parse().choices[0].message.content == "ok"
    assert response.headers["x-nexus-dropped-params"] == "seed, logit_bias"
    body = _last_body(gateway)
    assert (body["temperature"], body["top_p"], body["metadata"]) == (0.2, 0.8, {"user_id": "user-9"})
    assert "seed" not in body and "logit_bias" not in body


def test_a_model_that_refuses_unsupported_parameters_names_them(gateway):
    gateway.upstream.make_model(kind="anthropic", name="claude-strict", drop_params=False)
    with pytest.raises(openai.BadRequestError) as error:
        gateway.client.chat.completions.create(
            model="claude-strict", messages=[{"role": "user", "content": "hi"}], seed=7
        )
    assert (error.value.code, error.value.param) == ("unsupported_parameter", "seed")
    assert gateway.upstream.requests() == []


def test_n_gives_as_many_choices(gateway):
    gateway.upstream.configure(reply="same words")
    completion = gateway.client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], n=2
    )
    assert [choice.index for choice in completion.choices] == [0, 1]
    assert all(choice.message.content for choice in completion.choices)
    assert _last_body(gateway)["n"] == 2


def test_log_probabilities_come_back_in_the_chunks(gateway):
    gateway.upstream.configure(reply="one two three")
    stream = gateway.client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "hi"}],
        logprobs=True,
        top_logprobs=2,
        stream=True,
    )
    entries = [
        e for c in stream if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content
    ]
    assert "".join(entry.token for entry in entries) == "one two three"
    assert all(len(entry.top_logprobs) == 2 for entry in entries)


def test_reasoning_streams_as_reasoning_content_before_the_text(gateway):
    gateway.upstream.configure(reasoning="Let me think.", reply="Forty-two.")
    stream = gateway.client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "The answer?"}], stream=True
    )
    kinds = []
    for chunk in stream:
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is not None and (delta.model_extra or {}).get("reasoning_content"):
            kinds.append(("reasoning", delta.model_extra["reasoning_content"]))
        elif delta is not None and delta.content:
            kinds.append(("text", delta.content))
    assert "".join(text for kind, text in kinds if kind == "reasoning") == "Let me think."
    assert "".join(text for kind, text in kinds if kind == "text") == "Forty-two."
    assert kinds[0][0] == "reasoning"


# --- messages in order --------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-test", "claude-test"])
def test_a_late_system_message_stays_where_it_stood(gateway, model):
    gateway.upstream.configure(reply="Summary.")
    gateway.client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Tell me about owls."},
            {"role": "assistant", "content": "Owls are birds."},
            {"role": "system", "content": "Summarize the conversation above."},
        ],
    )
    body = _last_body(gateway)
    if model == "gpt-test":
        assert [message["role"] for message in body["messages"]] == ["system", "user", "assistant", "system"]
        assert body["messages"][-1]["content"] == "Summarize the conversation above."
    else:
        assert body["system"] == "You are helpful."
        assert "Summarize the conversation above." in json.dumps(body["messages"][-1])
        assert "Summarize" not in body["system"]


async def test_the_async_sdk_streams_a_tool_call_and_takes_its_result(gateway):
    client: Any = openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=gateway.secret, max_retries=0, timeout=10
    )
    gateway.upstream.configure(
        reply="", tool_calls=[{"name": "get_weather", "arguments": '{"city": "Kyiv"}'}]
    )
    question = {"role": "user", "content": "Kyiv?"}
    async with client.chat.completions.stream(
        model="claude-test", messages=[question], tools=[WEATHER]
    ) as stream:
        final = await stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Kyiv"})

    gateway.upstream.configure(reply="Cold.", tool_calls=None)
    answer = await client.chat.completions.create(
        model="claude-test",
        tools=[WEATHER],
        messages=[
            question,
            final.choices[0].message.model_dump(exclude_none=True, include={"role", "content", "tool_calls"}),
            {"role": "tool", "tool_call_id": call.id, "content": "-5 C"},
        ],
    )
    assert answer.choices[0].message.content == "Cold."
    await client.close()
