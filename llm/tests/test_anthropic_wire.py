"""Anthropic's Messages wire format, both sides: the fake upstream speaks it as Claude does (the
official SDK reads it), and the adapter sends a conversation's parts, tools and parameters in
it and reads thinking, text and tool calls back."""

from __future__ import annotations

import asyncio
import base64
import json

import anthropic
import pytest

from llm.tests.conftest import ask, run
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
)

pytestmark = pytest.mark.django_db

WEATHER = {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius", "days": [1, 2]}'}
TIME = {"name": "get_time", "arguments": '{"zone": "Europe/Paris"}'}
WEATHER_TOOL = Tool(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image").decode()
PDF = base64.b64encode(b"%PDF-1.7 fake document").decode()


def sdk_stream(url: str, **params):
    """The SDK's raw stream events and its final message, for one streamed call."""

    async def call():
        client = anthropic.AsyncAnthropic(api_key="k", base_url=url, max_retries=0)
        async with client, client.messages.stream(model="claude-fake", **params) as stream:
            events = [event async for event in stream]
            return events, await stream.get_final_message()

    return asyncio.run(call())


def sdk_create(url: str, **params):
    async def call():
        async with anthropic.AsyncAnthropic(api_key="k", base_url=url, max_retries=0) as client:
            return await client.messages.create(model="claude-fake", **params)

    return asyncio.run(call())


HI = {"max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


# --- the fake upstream, read by the official SDK ------------------------------------------


def test_the_sdk_reads_thinking_text_and_tool_use_blocks_from_the_stream(fake_upstream):
    fake_upstream.configure(reasoning="Two tools will do.", reply="Let me check.", tool_calls=[WEATHER, TIME])

    events, message = sdk_stream(fake_upstream.url, **HI)

    starts = [event for event in events if event.type == "content_block_start"]
    assert [(event.index, event.content_block.type) for event in starts] == [
        (0, "thinking"),
        (1, "text"),
        (2, "tool_use"),
        (3, "tool_use"),
    ]
    thinking, text, weather, time = message.content
    assert thinking.type == "thinking" and thinking.thinking == "Two tools will do." and thinking.signature
    assert text.type == "text" and text.text == "Let me check."
    assert weather.type == "tool_use" and time.type == "tool_use"
    assert (weather.name, weather.input) == ("get_weather", json.loads(WEATHER["arguments"]))
    assert (time.name, time.input) == ("get_time", {"zone": "Europe/Paris"})
    assert weather.id.startswith("toolu_") and weather.id != time.id
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 3 + 4  # the reply's words and the reasoning's


def test_the_sdk_reads_the_same_blocks_from_a_whole_reply(fake_upstream):
    fake_upstream.configure(reasoning="Hmm.", reply="Checking.", tool_calls=[WEATHER])

    message = sdk_create(fake_upstream.url, **HI)

    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[0].thinking == "Hmm."
    assert message.content[2].input == json.loads(WEATHER["arguments"])
    assert message.stop_reason == "tool_use"


def test_a_reply_that_only_calls_tools_has_no_text_block(fake_upstream):
    fake_upstream.configure(reply="", tool_calls=[WEATHER])

    events, message = sdk_stream(fake_upstream.url, **HI)
    whole = sdk_create(fake_upstream.url, **HI)

    assert [block.type for block in message.content] == ["tool_use"]
    assert [block.type for block in whole.content] == ["tool_use"]
    fragments = [
        event.delta.partial_json
        for event in events
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta"
    ]
    assert len([fragment for fragment in fragments if fragment]) > 1
    assert "".join(fragments) == WEATHER["arguments"]


def test_a_reply_cut_at_max_tokens_stops_for_max_tokens(fake_upstream):
    fake_upstream.configure(tokens=10)

    _, message = sdk_stream(fake_upstream.url, max_tokens=3, messages=HI["messages"])

    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "word1 word2 word3"


def test_the_fake_takes_images_documents_and_tool_results(fake_upstream):
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                },
                {"type": "text", "text": "What is the weather where this cat lives?"},
            ],
        },
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny."}]},
    ]

    message = sdk_create(fake_upstream.url, max_tokens=100, messages=messages)

    assert message.content[0].type == "text"
    assert fake_upstream.requests()[0]["body"]["messages"] == messages


@pytest.mark.parametrize(
    ("messages", "complaint"),
    [
        ([{"role": "system", "content": "Be brief."}], "role"),
        ([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9"}]}], "tool_use_id"),
        (
            [
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}],
                },
                {"role": "user", "content": "Well?"},
            ],
            "without tool_result",
        ),
        ([{"role": "user", "content": [{"type": "text", "text": ""}]}], "non-empty"),
    ],
)
def test_the_fake_refuses_what_the_api_refuses(fake_upstream, messages, complaint):
    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk_create(fake_upstream.url, max_tokens=100, messages=messages)

    assert complaint in str(refused.value)


# --- the adapter: what it reads ------------------------------------------------------------


def test_a_streamed_tool_call_arrives_in_fragments_that_join_to_its_arguments(fake_upstream):
    fake_upstream.configure(reply="", tool_calls=[WEATHER, TIME])
    fake_upstream.make_model(kind="anthropic", name="m")

    outcome = run("m", ask("Weather and time in Paris?", tools=(WEATHER_TOOL,)))

    assert outcome.error is None
    calls = outcome.of(ToolCallDelta)
    assert [call.index for call in calls if call.name] == [0, 1]
    assert [call.name for call in calls if call.name] == ["get_weather", "get_time"]
    assert all(call.id.startswith("toolu_") for call in calls if call.name)
    assert all(not call.id and not call.name for call in calls if not call.name)
    weather = [call.arguments for call in calls if call.index == 0]
    assert len(weather) > 2
    assert "".join(weather) == WEATHER["arguments"]
    assert "".join(call.arguments for call in calls if call.index == 1) == TIME["arguments"]
    assert outcome.text == ""
    assert outcome.events[-1] == Finish("tool_calls")


def test_reasoning_streams_before_the_text(fake_upstream):
    fake_upstream.configure(reasoning="First, think it over.", reply="The answer is 42.")
    fake_upstream.make_model(kind="anthropic", name="m")

    outcome = run("m")

    kinds = [type(event) for event in outcome.events if isinstance(event, ReasoningDelta | TextDelta)]
    assert kinds == [ReasoningDelta] * 4 + [TextDelta] * 4
    assert "".join(event.text for event in outcome.of(ReasoningDelta)) == "First, think it over."
    assert outcome.text == "The answer is 42."
    assert outcome.events[-1] == Finish("stop")


# --- the adapter: what it sends -------------------------------------------------------------


def last_body(fake_upstream) -> dict:
    return fake_upstream.requests()[-1]["body"]


def test_a_tool_round_trip_is_sent_as_tool_use_and_tool_result_blocks(fake_upstream):
    fake_upstream.make_model(kind="anthropic", name="m")
    request = ChatRequest(
        tools=(WEATHER_TOOL,),
        messages=(
            ChatMessage(role="user", content="Weather in Paris and Rome?"),
            ChatMessage(
                role="assistant",
                content="Checking both.",
                tool_calls=(
                    ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}'),
                    # Cut off by the token limit: not JSON, sent as an empty input.
                    ToolCall(id="call_2", name="get_weather", arguments='{"city": "Ro'),
                ),
            ),
            ChatMessage(role="tool", tool_call_id="call_1", name="get_weather", content="18°C, sunny"),
            ChatMessage(role="tool", tool_call_id="call_2", name="get_weather", content="21°C"),
            ChatMessage(role="user", content="And tomorrow?"),
        ),
    )

    outcome = run("m", request)

    assert outcome.error is None  # the fake checks the pairing as the API does
    assert last_body(fake_upstream)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18°C, sunny"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "21°C"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


def test_call_ids_anthropic_would_refuse_are_made_safe_on_both_sides(fake_upstream):
    fake_upstream.make_model(kind="anthropic", name="m")
    request = ChatRequest(
        messages=(
            ChatMessage(role="user", content="Weather?"),
            ChatMessage(
                role="assistant", tool_calls=(ToolCall(id="functions.get_weather:0", name="get_weather"),)
            ),
            ChatMessage(role="tool", tool_call_id="functions.get_weather:0", content="Sunny"),
        ),
        tools=(WEATHER_TOOL,),
    )

    outcome = run("m", request)

    assert outcome.error is None
    assistant, results = last_body(fake_upstream)["messages"][1:]
    assert assistant["content"][0]["id"] == results["content"][0]["tool_use_id"] == "functions_get_weather_0"


def test_images_go_as_url_and_base64_sources(fake_upstream):
    fake_upstream.make_model(kind="anthropic", name="m")
    parts = (
        TextPart("Which is the cat?"),
        ImagePart(url="https://example.com/cat.jpg", detail="high"),
        ImagePart(url=f"data:image/png;base64,{PNG}"),
    )

    outcome = run("m", ChatRequest(messages=(ChatMessage(role="user", content=parts),)))

    assert outcome.error is None
    assert last_body(fake_upstream)["messages"][0]["content"] == [
        {"type": "text", "text": "Which is the cat?"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    ]


def test_a_pdf_goes_as_a_document_and_a_text_file_as_plain_text(fake_upstream):
    fake_upstream.make_model(kind="anthropic", name="m")
    notes = base64.b64encode("Prix : 3 €".encode()).decode()
    parts = (
        FilePart(data=PDF, media_type="application/pdf", filename="report.pdf"),
        FilePart(data=notes, media_type="text/plain", filename="notes.txt"),
        TextPart("Summarize both."),
    )

    outcome = run("m", ChatRequest(messages=(ChatMessage(role="user", content=parts),)))

    assert outcome.error is None
    assert last_body(fake_upstream)["messages"][0]["content"][:2] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
            "title": "report.pdf",
        },
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "Prix : 3 €"},
            "title": "notes.txt",
        },
    ]


@pytest.mark.parametrize(
    "part",
    [AudioPart(data="UklGRg==", format="wav"), FilePart(file_id="file-abc123")],
)
def test_parts_anthropic_cannot_take_are_refused_before_any_call(fake_upstream, part):
    fake_upstream.make_model(kind="anthropic", name="m")

    outcome = run("m", ChatRequest(messages=(ChatMessage(role="user", content=(TextPart("Listen"), part)),)))

    assert outcome.failure.code == "upstream_bad_request"
    assert "Anthropic does not take" in outcome.failure.message
    assert fake_upstream.requests() == []


def test_a_late_system_message_is_a_user_turn_where_it_stood(fake_upstream):
    fake_upstream.make_model(kind="anthropic", name="m")
    request = ChatRequest(
        system="You are terse.",
        messages=(
            ChatMessage(role="user", content="Hi"),
            ChatMessage(role="assistant", content="Hello."),
            ChatMessage(role="system", content="From now on, answer in French."),
            ChatMessage(role="user", content="Bye"),
        ),
    )

    run("m", request)

    body = last_body(fake_upstream)
    assert body["system"] == "You are terse."
    assert body["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "System: From now on, answer in French."},
                {"type": "text", "text": "Bye"},
            ],
        },
    ]


def test_sampling_stop_sequences_and_the_user_are_in_the_body(fake_upstream):
    fake_upstream.make_model(kind="anthropic", name="m")

    run("m", ask(temperature=0.3, top_p=0.8, stop=("END", "STOP"), options={"user": "user-42", "seed": 7}))

    body = last_body(fake_upstream)
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.8
    assert body["stop_sequences"] == ["END", "STOP"]
    assert body["metadata"] == {"user_id": "user-42"}
    assert "seed" not in body  # Anthropic has none


def test_tools_are_sent_with_their_input_schema(fake_upstream):
    fake_upstream.make_model(kind="anthropic", name="m")
    bare = Tool(name="now")

    run("m", ask(tools=(WEATHER_TOOL, bare)))

    body = last_body(fake_upstream)
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": dict(WEATHER_TOOL.parameters),
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "parallel", "sent"),
    [
        (ToolChoice("auto"), None, {"type": "auto"}),
        (ToolChoice("none"), None, {"type": "none"}),
        (ToolChoice("required"), None, {"type": "any"}),
        (ToolChoice("function", "get_weather"), None, {"type": "tool", "name": "get_weather"}),
        (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice_maps_to_anthropics(fake_upstream, choice, parallel, sent):
    fake_upstream.make_model(kind="anthropic", name="m")

    run("m", ask(tools=(WEATHER_TOOL,), tool_choice=choice, parallel_tool_calls=parallel))

    assert last_body(fake_upstream)["tool_choice"] == sent


def test_a_json_schema_goes_to_output_config_as_structured_outputs_take_it(fake_upstream):
    fake_upstream.make_model(kind="anthropic", name="m")
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

    run("m", ask(response_format=ResponseFormat(type="json_schema", name="place", schema=schema)))

    body = last_body(fake_upstream)
    assert body["output_config"] == {
        "format": {"type": "json_schema", "schema": {**schema, "additionalProperties": False}}
    }
    assert "system" not in body


def test_a_json_object_is_asked_for_in_the_system_prompt(fake_upstream):
    fake_upstream.make_model(kind="anthropic", name="m")

    run("m", ask(system="You are terse.", response_format=ResponseFormat(type="json_object")))

    body = last_body(fake_upstream)
    assert body["system"].startswith("You are terse.\n\n")
    assert "one JSON object and nothing else" in body["system"]
    assert "output_config" not in body


@pytest.mark.parametrize(
    ("effort", "sent"), [("minimal", "low"), ("low", "low"), ("medium", "medium"), ("high", "high")]
)
def test_reasoning_effort_goes_to_output_config(fake_upstream, effort, sent):
    fake_upstream.make_model(kind="anthropic", name="m")

    run("m", ask(options={"reasoning_effort": effort}))

    body = last_body(fake_upstream)
    assert body["output_config"] == {"effort": sent}
    assert "thinking" not in body


def test_reasoning_effort_none_turns_thinking_off(fake_upstream):
    fake_upstream.make_model(kind="anthropic", name="m")

    run("m", ask(options={"reasoning_effort": "none"}))

    body = last_body(fake_upstream)
    assert body["thinking"] == {"type": "disabled"}
    assert "output_config" not in body
