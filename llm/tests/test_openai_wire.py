"""The OpenAI kinds speak chat completions in full: parts, tools, reasoning, logprobs, `n`.

Most tests drive the adapter's `stream` itself against the fake upstream, so that they see
its events as it yields them; one goes through stream_chat as callers do.
"""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from llm.providers import openai_chat
from llm.providers.base import Params
from llm.selectors import route_get
from llm.tests.conftest import Outcome, ask, consume, run
from llm.types import (
    AudioPart,
    ChatMessage,
    ChatRequest,
    FilePart,
    Finish,
    ImagePart,
    ReasoningDelta,
    ResponseFormat,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)

pytestmark = pytest.mark.django_db

OPENAI_KINDS = ("openai", "azure_openai", "deepseek", "openai_compatible")
WEATHER = Tool(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    strict=True,
)
CALLS = [
    {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
    {"name": "get_time", "arguments": '{"zone": "Europe/Paris"}'},
]
PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAfbLI3wAAAABJRU5ErkJggg=="
)


@pytest.fixture(params=OPENAI_KINDS)
def kind(request) -> str:
    return str(request.param)


def adapter_run(name: str, request: ChatRequest) -> Outcome:
    """Stream `request` to the model `name` through the adapter itself, as stream_chat calls it."""
    target = route_get(name=name).primary
    return asyncio.run(consume(openai_chat.stream(target, request, Params.merge(target, request))))


def sent(fake_upstream) -> dict:
    [request] = fake_upstream.requests()
    return request["body"]


# --- Tool calls --------------------------------------------------------------------------


def test_a_tool_call_streams_as_openai_sends_it(fake_upstream, kind):
    fake_upstream.configure(reply="", tool_calls=CALLS)
    fake_upstream.make_model(kind=kind, name="m")

    outcome = adapter_run("m", ask("Weather and time in Paris?", tools=(WEATHER,)))

    assert outcome.error is None
    deltas = outcome.of(ToolCallDelta)
    for index, call in enumerate(CALLS):
        fragments = [delta for delta in deltas if delta.index == index]
        first, *rest = fragments
        assert first.id.startswith("call_") and first.name == call["name"]
        assert rest, "the arguments come in fragments of their own"
        assert all(not fragment.id and not fragment.name for fragment in rest)
        assert "".join(fragment.arguments for fragment in fragments) == call["arguments"]
    assert len({delta.id for delta in deltas if delta.id}) == 2
    assert outcome.of(TextDelta) == []
    assert isinstance(outcome.events[-2], Usage)
    assert outcome.events[-1] == Finish("tool_calls")


def test_a_tool_call_after_text_streams_through_stream_chat(fake_upstream):
    fake_upstream.configure(reply="Let me look.", tool_calls=CALLS[:1])
    fake_upstream.make_model(kind="openai", name="m")

    outcome = run("m", ask("Weather in Paris?", tools=(WEATHER,)))

    assert outcome.error is None
    assert outcome.text == "Let me look."
    arguments = "".join(delta.arguments for delta in outcome.of(ToolCallDelta))
    assert json.loads(arguments) == {"city": "Paris", "unit": "celsius"}
    assert outcome.events[-1] == Finish("tool_calls")


def test_a_tool_round_trip_is_sent_as_openai_expects(fake_upstream, kind):
    fake_upstream.make_model(kind=kind, name="m")
    request = ChatRequest(
        system="You help with weather.",
        messages=(
            ChatMessage(role="user", content="Weather in Paris?"),
            ChatMessage(
                role="assistant",
                tool_calls=(ToolCall(id="call_abc", name="get_weather", arguments='{"city": "Paris"}'),),
            ),
            ChatMessage(role="tool", tool_call_id="call_abc", name="get_weather", content='{"temp": 21}'),
        ),
        tools=(WEATHER, Tool(name="get_time")),
        tool_choice=ToolChoice(mode="function", name="get_weather"),
        parallel_tool_calls=False,
    )

    adapter_run("m", request)

    body = sent(fake_upstream)
    assert body["messages"] == [
        {"role": "system", "content": "You help with weather."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp": 21}'},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": dict(WEATHER.parameters),
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "get_time"}},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    if kind == "deepseek":
        assert "parallel_tool_calls" not in body  # DeepSeek has no such switch
    else:
        assert body["parallel_tool_calls"] is False


@pytest.mark.parametrize("mode", ["auto", "none", "required"])
def test_a_tool_choice_mode_is_sent_by_its_name(fake_upstream, mode):
    fake_upstream.make_model(kind="openai", name="m")

    adapter_run("m", ask(tools=(WEATHER,), tool_choice=ToolChoice(mode=mode)))

    assert sent(fake_upstream)["tool_choice"] == mode


# --- Content parts -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "azure_openai", "openai_compatible"])
def test_images_are_sent_as_image_url_parts(fake_upstream, kind):
    fake_upstream.make_model(kind=kind, name="m")
    parts = (
        TextPart("What are these?"),
        ImagePart("https://example.com/cat.jpg", detail="low"),
        ImagePart(PNG),
    )

    outcome = adapter_run("m", ChatRequest(messages=(ChatMessage(role="user", content=parts),)))

    assert outcome.error is None
    assert sent(fake_upstream)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What are these?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": PNG}},
            ],
        }
    ]


def test_audio_and_documents_are_sent_as_openai_parts(fake_upstream):
    fake_upstream.make_model(kind="openai", name="m")
    parts = (
        AudioPart(data="UklGRg==", format="wav"),
        FilePart(data="JVBERi0=", media_type="application/pdf", filename="report.pdf"),
        FilePart(file_id="file-123"),
    )

    adapter_run("m", ChatRequest(messages=(ChatMessage(role="user", content=parts),)))

    assert sent(fake_upstream)["messages"][0]["content"] == [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "report.pdf"},
        },
        {"type": "file", "file": {"file_id": "file-123"}},
    ]


def test_deepseek_refuses_an_image_without_calling_out(fake_upstream):
    fake_upstream.make_model(kind="deepseek", name="m")
    parts = (TextPart("What is this?"), ImagePart(PNG))

    outcome = adapter_run("m", ChatRequest(messages=(ChatMessage(role="user", content=parts),)))

    assert outcome.failure.code == "upstream_bad_request"
    assert outcome.failure.message == "DeepSeek does not take image input."
    assert fake_upstream.requests() == []


def test_a_late_system_message_stays_where_it_stood(fake_upstream, kind):
    fake_upstream.make_model(kind=kind, name="m")
    request = ChatRequest(
        system="Be brief.",
        messages=(
            ChatMessage(role="user", content="Hi"),
            ChatMessage(role="assistant", content="Hello."),
            ChatMessage(role="system", content="From now on, answer in French."),
            ChatMessage(role="user", content="Bye"),
        ),
    )

    adapter_run("m", request)

    assert sent(fake_upstream)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "system", "content": "From now on, answer in French."},
        {"role": "user", "content": "Bye"},
    ]


# --- What streams back -------------------------------------------------------------------


def test_reasoning_arrives_before_the_text(fake_upstream, kind):
    fake_upstream.configure(reasoning="The user greets me, so I greet back.", reply="Hello there!")
    fake_upstream.make_model(kind=kind, name="m")

    outcome = adapter_run("m", ask())

    reasoning = outcome.of(ReasoningDelta)
    assert "".join(delta.text for delta in reasoning) == "The user greets me, so I greet back."
    assert len(reasoning) > 1, "the reasoning streams word by word"
    first_text = outcome.events.index(outcome.of(TextDelta)[0])
    assert outcome.events.index(reasoning[-1]) < first_text
    assert outcome.text == "Hello there!"


@pytest.mark.parametrize("kind", ["openai", "deepseek"])
def test_logprobs_arrive_on_the_text_deltas(fake_upstream, kind):
    fake_upstream.configure(reply="Yes it is.")
    fake_upstream.make_model(kind=kind, name="m")

    outcome = adapter_run("m", ask(options={"logprobs": True, "top_logprobs": 2}))

    body = sent(fake_upstream)
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    deltas = outcome.of(TextDelta)
    assert [delta.text for delta in deltas] == ["Yes", " it", " is."]
    for delta in deltas:
        [entry] = delta.logprobs
        assert entry["token"] == delta.text
        assert entry["bytes"] == list(delta.text.encode())
        assert entry["logprob"] < 0
        assert [alternative["token"] for alternative in entry["top_logprobs"]] == [delta.text, "alt1"]


def test_without_logprobs_asked_the_deltas_carry_none(fake_upstream):
    fake_upstream.make_model(kind="openai", name="m")

    outcome = adapter_run("m", ask())

    assert all(delta.logprobs == () for delta in outcome.of(TextDelta))


def test_two_choices_stream_side_by_side(fake_upstream):
    fake_upstream.configure(reply="One two three.")
    fake_upstream.make_model(kind="openai", name="m")

    outcome = adapter_run("m", ask(options={"n": 2}))

    assert sent(fake_upstream)["n"] == 2
    for choice in (0, 1):
        text = "".join(delta.text for delta in outcome.of(TextDelta) if delta.choice == choice)
        assert text == "One two three."
    [usage] = outcome.of(Usage)
    assert usage.output_tokens == 6  # both replies count
    assert outcome.events[-3:] == [usage, Finish("stop", 0), Finish("stop", 1)]


def test_deepseek_asks_for_one_choice_only(fake_upstream):
    fake_upstream.make_model(kind="deepseek", name="m")

    outcome = adapter_run("m", ask(options={"n": 2}))

    assert "n" not in sent(fake_upstream)
    assert {delta.choice for delta in outcome.of(TextDelta)} == {0}
    assert outcome.of(Finish) == [Finish("stop", 0)]


# --- Parameters --------------------------------------------------------------------------

OPTIONS = {
    "seed": 42,
    "presence_penalty": 0.5,
    "frequency_penalty": 0.25,
    "logit_bias": {"1234": -100},
    "reasoning_effort": "low",
    "verbosity": "low",
    "user": "user-7",
    "metadata": {"team": "blue"},
    "prompt_cache_key": "conversation-7",
    "safety_identifier": "hash-of-user-7",
    "service_tier": "flex",
    "store": True,
}
DEEPSEEK_TAKES = {"presence_penalty", "frequency_penalty"}


def test_the_requests_options_land_in_the_body(fake_upstream, kind):
    fake_upstream.make_model(kind=kind, name="m", max_output_tokens=500)

    adapter_run("m", ask(options=OPTIONS, max_tokens=100, temperature=0.3))

    body = sent(fake_upstream)
    taken = DEEPSEEK_TAKES if kind == "deepseek" else set(OPTIONS)
    assert {name: body[name] for name in taken} == {name: OPTIONS[name] for name in taken}
    assert (set(OPTIONS) - taken) & set(body) == set(), "DeepSeek gets only what it takes"
    assert body["temperature"] == 0.3
    limit = "max_completion_tokens" if kind == "openai" else "max_tokens"
    assert body[limit] == 100
    assert ({"max_tokens", "max_completion_tokens"} - {limit}) & set(body) == set()


def test_the_requests_options_win_over_the_models_defaults(fake_upstream):
    fake_upstream.make_model(kind="openai", name="m", default_params={"seed": 7, "user": "operator"})

    adapter_run("m", ask(options={"seed": 42}))

    body = sent(fake_upstream)
    assert body["seed"] == 42
    assert body["user"] == "operator"


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def test_a_json_schema_is_sent_as_given(fake_upstream, kind):
    fake_upstream.make_model(kind=kind, name="m")
    response_format = ResponseFormat(
        type="json_schema", name="answer", schema=SCHEMA, strict=True, description="One answer."
    )

    adapter_run("m", ask(response_format=response_format))

    expected: dict[str, object]
    if kind == "deepseek":
        expected = {"type": "json_object"}  # DeepSeek has no schemas
    else:
        expected = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "description": "One answer.", "schema": SCHEMA, "strict": True},
        }
    assert sent(fake_upstream)["response_format"] == expected


@pytest.mark.parametrize("format_type", ["json_object", "text"])
def test_the_other_response_formats_are_sent_by_their_type(fake_upstream, kind, format_type):
    fake_upstream.make_model(kind=kind, name="m")

    adapter_run("m", ask(response_format=ResponseFormat(type=format_type)))

    assert sent(fake_upstream)["response_format"] == {"type": format_type}


# --- The fake itself, read by the official SDK -------------------------------------------


def test_the_official_sdk_reads_the_fakes_tool_calls_and_logprobs(fake_upstream):
    fake_upstream.configure(reply="Checking.", tool_calls=CALLS, reasoning="Two lookups.")
    messages: list = [{"role": "user", "content": "Weather and time?"}]

    async def ask_both_ways() -> tuple:
        async with openai.AsyncOpenAI(
            api_key="k", base_url=f"{fake_upstream.url}/v1", max_retries=0
        ) as client:
            async with client.chat.completions.stream(
                model="m",
                messages=messages,
                logprobs=True,
                top_logprobs=1,
                stream_options={"include_usage": True},
            ) as stream:
                streamed = await stream.get_final_completion()
            whole = await client.chat.completions.create(model="m", messages=messages, logprobs=True, n=2)
        return streamed, whole

    streamed, whole = asyncio.run(ask_both_ways())

    for completion in (streamed, whole):
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content == "Checking."
        calls = choice.message.tool_calls or []
        assert [(call.function.name, call.function.arguments) for call in calls] == [
            (call["name"], call["arguments"]) for call in CALLS
        ]
        assert all(call.id.startswith("call_") and call.type == "function" for call in calls)
        assert choice.logprobs is not None and choice.logprobs.content is not None
        assert "".join(entry.token for entry in choice.logprobs.content) == "Checking."
    assert [choice.index for choice in whole.choices] == [0, 1]
    assert whole.choices[0].message.model_extra["reasoning_content"] == "Two lookups."
    assert streamed.usage is not None and streamed.usage.completion_tokens == 3  # 1 word, 2 of reasoning
