"""Gemini's generateContent wire, both ways: what the adapter sends through the google-genai SDK,
and how the fake's function calls, thoughts, candidates and log probabilities come back."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import pytest
from google import genai
from google.genai import types

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
    Served,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)

pytestmark = pytest.mark.django_db

WEATHER = Tool(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PNG = b"\x89PNG\r\n\x1a\n fake image bytes"


def gemini(fake_upstream, **fields):
    return fake_upstream.make_model(kind="gemini", name="m", upstream_name="gemini-up", **fields)


# Fields whose values are the caller's own JSON, never renamed.
_DATA = {"args", "response", "parametersJsonSchema", "responseJsonSchema"}


def wire_names(value: Any) -> Any:
    """A request as Gemini reads it: the SDK sends nested objects under their proto names
    (`file_uri`), top-level ones under their JSON names (`fileData`); Gemini takes both."""
    if isinstance(value, list):
        return [wire_names(item) for item in value]
    if not isinstance(value, dict):
        return value
    named = {}
    for key, item in value.items():
        key = re.sub(r"_([a-z])", lambda match: match.group(1).upper(), key)
        named[key] = item if key in _DATA else wire_names(item)
    return named


def sent(fake_upstream) -> dict:
    """The body of the last request the fake received, under Gemini's JSON names."""
    return wire_names(fake_upstream.requests()[-1]["body"])


# --- Tool calls ------------------------------------------------------------------------


def test_a_function_call_arrives_whole_as_one_tool_call_delta_and_finishes_tool_calls(fake_upstream):
    fake_upstream.configure(
        reply="",
        tool_calls=[
            {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            {"name": "get_weather", "arguments": '{"city": "Oslo", "units": "metric"}', "id": "fc_7"},
        ],
    )
    gemini(fake_upstream)

    outcome = run("m", ask("Weather in Paris and Oslo?", tools=(WEATHER,)))

    assert outcome.error is None
    first, second = outcome.of(ToolCallDelta)
    # Gemini gave no id for the first call: one is made up, as OpenAI's look.
    assert re.fullmatch(r"call_[0-9a-f]{24}", first.id)
    assert (first.index, first.name, json.loads(first.arguments)) == (0, "get_weather", {"city": "Paris"})
    assert (second.index, second.id, second.name) == (1, "fc_7", "get_weather")
    assert json.loads(second.arguments) == {"city": "Oslo", "units": "metric"}
    assert outcome.of(TextDelta) == []
    assert outcome.events[-1] == Finish("tool_calls")


def test_the_tools_are_declared_with_their_json_schema(fake_upstream):
    gemini(fake_upstream)

    run("m", ask("Weather?", tools=(WEATHER,)))

    [tool] = sent(fake_upstream)["tools"]
    assert tool["functionDeclarations"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parametersJsonSchema": dict(WEATHER.parameters),
        }
    ]
    assert sent(fake_upstream)["generationConfig"].get("candidateCount") is None


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        (ToolChoice("auto"), {"mode": "AUTO"}),
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("required"), {"mode": "ANY"}),
        (ToolChoice("function", "get_weather"), {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
def test_the_tool_choice_becomes_a_function_calling_mode(fake_upstream, choice, config):
    gemini(fake_upstream)

    run("m", ask("Weather?", tools=(WEATHER,), tool_choice=choice))

    assert sent(fake_upstream)["toolConfig"] == {"functionCallingConfig": config}


def test_a_tool_round_trip_sends_function_calls_and_their_responses(fake_upstream):
    gemini(fake_upstream)
    calls = (
        ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}'),
        ToolCall(id="call_2", name="get_time", arguments='{"zone": "CET"}'),
    )
    request = ChatRequest(
        messages=(
            ChatMessage(role="user", content="Weather and time in Paris?"),
            ChatMessage(role="assistant", content="Let me look.", tool_calls=calls),
            ChatMessage(role="tool", tool_call_id="call_1", name="get_weather", content='{"temp": 21}'),
            ChatMessage(role="tool", tool_call_id="call_2", name="get_time", content="14:05"),
            ChatMessage(role="user", content="Thanks!"),
        ),
        tools=(WEATHER, Tool(name="get_time")),
    )

    outcome = run("m", request)

    assert outcome.error is None
    contents = sent(fake_upstream)["contents"]
    assert [content["role"] for content in contents] == ["user", "model", "user", "user"]
    model_turn = contents[1]["parts"]
    assert model_turn[0] == {"text": "Let me look."}
    assert model_turn[1]["functionCall"] == {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}
    assert model_turn[2]["functionCall"] == {"id": "call_2", "name": "get_time", "args": {"zone": "CET"}}
    # Nexus keeps no thought signatures: the first call carries Google's placeholder instead.
    assert model_turn[1]["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in model_turn[2]
    # Both results answer one turn, together; JSON results as JSON, text as text.
    assert contents[2]["parts"] == [
        {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"result": {"temp": 21}}}},
        {"functionResponse": {"id": "call_2", "name": "get_time", "response": {"result": "14:05"}}},
    ]
    assert contents[3]["parts"] == [{"text": "Thanks!"}]


def test_a_tool_result_without_a_name_takes_its_calls(fake_upstream):
    gemini(fake_upstream)
    request = ChatRequest(
        messages=(
            ChatMessage(role="user", content="Weather?"),
            ChatMessage(role="assistant", tool_calls=(ToolCall(id="call_9", name="get_weather"),)),
            ChatMessage(role="tool", tool_call_id="call_9", content="sunny"),
        )
    )

    run("m", request)

    contents = sent(fake_upstream)["contents"]
    assert contents[1]["parts"][0]["functionCall"]["args"] == {}
    assert contents[2]["parts"][0]["functionResponse"]["name"] == "get_weather"


# --- Content parts ---------------------------------------------------------------------


def test_images_go_inline_from_data_urls_and_by_url_otherwise(fake_upstream):
    gemini(fake_upstream)
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    parts = (
        TextPart("What are these?"),
        ImagePart(data_url),
        ImagePart("https://example.com/cat.webp", detail="high"),
        ImagePart("https://example.com/render?id=7"),
    )

    outcome = run("m", ChatRequest(messages=(ChatMessage(role="user", content=parts),)))

    assert outcome.error is None
    text, inline, remote, unnamed = sent(fake_upstream)["contents"][0]["parts"]
    assert text == {"text": "What are these?"}
    assert inline["inlineData"]["mimeType"] == "image/png"
    assert base64.urlsafe_b64decode(inline["inlineData"]["data"]) == PNG
    assert remote == {"fileData": {"fileUri": "https://example.com/cat.webp", "mimeType": "image/webp"}}
    assert unnamed["fileData"]["mimeType"] == "image/jpeg"  # no extension: the likeliest


def test_audio_and_documents_go_inline_with_their_media_types(fake_upstream):
    gemini(fake_upstream)
    pdf = b"%PDF-1.7 a small document"
    parts = (
        AudioPart(base64.b64encode(b"RIFF fake wave").decode(), "wav"),
        FilePart(data=base64.b64encode(pdf).decode(), media_type="application/pdf", filename="a.pdf"),
    )

    outcome = run("m", ChatRequest(messages=(ChatMessage(role="user", content=parts),)))

    assert outcome.error is None
    audio, document = sent(fake_upstream)["contents"][0]["parts"]
    assert audio["inlineData"]["mimeType"] == "audio/wav"
    assert base64.urlsafe_b64decode(audio["inlineData"]["data"]) == b"RIFF fake wave"
    assert document["inlineData"]["mimeType"] == "application/pdf"
    assert base64.urlsafe_b64decode(document["inlineData"]["data"]) == pdf


def test_an_openai_file_id_is_refused_before_anything_is_sent(fake_upstream):
    gemini(fake_upstream)
    parts = (TextPart("Summarize"), FilePart(file_id="file-abc123"))

    outcome = run("m", ChatRequest(messages=(ChatMessage(role="user", content=parts),)))

    assert outcome.failure.code == "upstream_bad_request"
    assert "file id" in outcome.failure.message
    assert fake_upstream.requests() == []


def test_a_later_system_message_stays_where_it_stood(fake_upstream):
    gemini(fake_upstream)
    request = ChatRequest(
        system="You are terse.",
        messages=(
            ChatMessage(role="user", content="Hi"),
            ChatMessage(role="assistant", content="Hello."),
            ChatMessage(role="system", content="From now on answer in French."),
            ChatMessage(role="user", content="Bye"),
        ),
    )

    run("m", request)

    body = sent(fake_upstream)
    assert body["systemInstruction"]["parts"] == [{"text": "You are terse."}]
    assert [content["parts"][0]["text"] for content in body["contents"]] == [
        "Hi",
        "Hello.",
        "System: From now on answer in French.",
        "Bye",
    ]
    assert [content["role"] for content in body["contents"]] == ["user", "model", "user", "user"]


# --- Reasoning -------------------------------------------------------------------------


def test_thoughts_stream_as_reasoning_before_the_text_and_count_as_output(fake_upstream):
    fake_upstream.configure(reasoning="First, think it through.", reply="The answer.")
    gemini(fake_upstream)

    outcome = run("m", ask("Why?", options={"reasoning_effort": "medium"}))

    assert outcome.error is None
    kinds = [type(event) for event in outcome.events if isinstance(event, TextDelta | ReasoningDelta)]
    assert kinds == [ReasoningDelta] * 4 + [TextDelta] * 2
    assert "".join(event.text for event in outcome.of(ReasoningDelta)) == "First, think it through."
    assert outcome.text == "The answer."
    [usage] = outcome.of(Usage)
    assert usage.output_tokens == 6 and not usage.estimated  # 4 thought words and 2 of the reply
    assert sent(fake_upstream)["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "HIGH",
        "includeThoughts": True,
    }


@pytest.mark.parametrize(
    ("effort", "thinking"),
    [
        ("minimal", {"thinkingLevel": "LOW", "includeThoughts": True}),
        ("low", {"thinkingLevel": "LOW", "includeThoughts": True}),
        ("high", {"thinkingLevel": "HIGH", "includeThoughts": True}),
        ("none", {"thinkingBudget": 0}),
    ],
)
def test_the_reasoning_effort_becomes_a_thinking_level(fake_upstream, effort, thinking):
    gemini(fake_upstream)

    run("m", ask(options={"reasoning_effort": effort}))

    assert sent(fake_upstream)["generationConfig"]["thinkingConfig"] == thinking


# --- Generation config -----------------------------------------------------------------


def test_seed_and_penalties_land_in_the_generation_config(fake_upstream):
    gemini(fake_upstream)

    run("m", ask(options={"seed": 42, "presence_penalty": 0.5, "frequency_penalty": -0.25}))

    config = sent(fake_upstream)["generationConfig"]
    assert (config["seed"], config["presencePenalty"], config["frequencyPenalty"]) == (42, 0.5, -0.25)


def test_the_request_wins_over_the_models_defaults_of_the_same_name(fake_upstream):
    gemini(fake_upstream, default_params={"seed": 7, "top_k": 20})

    run("m", ask(options={"seed": 42}))

    config = sent(fake_upstream)["generationConfig"]
    assert (config["seed"], config["topK"]) == (42, 20)


def test_a_json_schema_response_format_sends_the_schema(fake_upstream):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    fake_upstream.configure(reply='{"answer": "yes"}')
    gemini(fake_upstream)

    outcome = run("m", ask(response_format=ResponseFormat("json_schema", name="verdict", schema=schema)))

    assert json.loads(outcome.text) == {"answer": "yes"}
    config = sent(fake_upstream)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema


def test_a_json_object_response_format_asks_for_json_only(fake_upstream):
    gemini(fake_upstream)

    run("m", ask(response_format=ResponseFormat("json_object")))

    config = sent(fake_upstream)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "responseJsonSchema" not in config


def test_a_reply_cut_at_max_output_tokens_finishes_length(fake_upstream):
    fake_upstream.configure(tokens=10)
    gemini(fake_upstream)

    outcome = run("m", ask(max_tokens=3))

    assert sent(fake_upstream)["generationConfig"]["maxOutputTokens"] == 3
    assert len(outcome.of(TextDelta)) == 3
    assert outcome.events[-1] == Finish("length")


# --- Candidates and log probabilities --------------------------------------------------


def test_two_candidates_stream_as_choices_zero_and_one(fake_upstream):
    fake_upstream.configure(reply="Two ways.")
    gemini(fake_upstream)

    outcome = run("m", ask(options={"n": 2}))

    assert outcome.error is None
    assert sent(fake_upstream)["generationConfig"]["candidateCount"] == 2
    for choice in (0, 1):
        assert "".join(e.text for e in outcome.of(TextDelta) if e.choice == choice) == "Two ways."
    assert outcome.events[-2:] == [Finish("stop", 0), Finish("stop", 1)]
    assert isinstance(outcome.events[-3], Usage)


def test_log_probabilities_arrive_as_openais_entries(fake_upstream):
    fake_upstream.configure(reply="Hi there")
    gemini(fake_upstream)

    outcome = run("m", ask(options={"logprobs": True, "top_logprobs": 2}))

    config = sent(fake_upstream)["generationConfig"]
    assert (config["responseLogprobs"], config["logprobs"]) == (True, 2)
    first, second = outcome.of(TextDelta)
    assert first.logprobs == (
        {
            "token": "Hi",
            "logprob": -0.05,
            "bytes": list(b"Hi"),
            "top_logprobs": [
                {"token": "Hi", "logprob": -0.05, "bytes": list(b"Hi")},
                {"token": "alt1", "logprob": -1.05, "bytes": list(b"alt1")},
            ],
        },
    )
    [entry] = second.logprobs
    assert (entry["token"], entry["logprob"], entry["bytes"]) == (" there", -0.1, list(b" there"))


def test_without_logprobs_asked_none_are_sent_or_given(fake_upstream):
    gemini(fake_upstream)

    outcome = run("m")

    assert "responseLogprobs" not in sent(fake_upstream).get("generationConfig", {})
    assert all(event.logprobs == () for event in outcome.of(TextDelta))
    assert isinstance(outcome.events[0], Served)


# --- The fake, read by the SDK itself ----------------------------------------------------


def test_the_sdk_reads_a_whole_reply_with_thoughts_calls_candidates_and_logprobs(fake_upstream):
    fake_upstream.configure(
        reasoning="Hmm, the weather.",
        reply="Checking.",
        tool_calls=[{"name": "get_weather", "arguments": '{"city": "Rome"}', "id": "fc_1"}],
    )
    config = types.GenerateContentConfig(
        candidate_count=2,
        response_logprobs=True,
        logprobs=3,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )

    async def call() -> types.GenerateContentResponse:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake_upstream.url))
        try:
            return await client.aio.models.generate_content(model="g", contents="Rome?", config=config)
        finally:
            await client.aio.aclose()

    response = asyncio.run(call())

    assert response.candidates is not None
    assert [candidate.index for candidate in response.candidates] == [0, 1]
    candidate = response.candidates[1]
    assert candidate.content is not None and candidate.content.parts is not None
    thought, text, call_part = candidate.content.parts
    assert (thought.thought, thought.text) == (True, "Hmm, the weather.")
    assert text.text == "Checking."
    assert call_part.function_call is not None
    assert (call_part.function_call.id, call_part.function_call.name) == ("fc_1", "get_weather")
    assert call_part.function_call.args == {"city": "Rome"}
    assert call_part.thought_signature  # bytes, decoded from base64 by the SDK
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.logprobs_result is not None and candidate.logprobs_result.top_candidates is not None
    assert [c.token for c in candidate.logprobs_result.chosen_candidates or []] == ["Checking."]
    assert len(candidate.logprobs_result.top_candidates[0].candidates or []) == 3
    assert candidate.avg_logprobs == pytest.approx(-0.05)
    usage = response.usage_metadata
    assert usage is not None
    assert (usage.candidates_token_count, usage.thoughts_token_count) == (2, 3)


def test_the_fake_records_the_parts_it_was_sent(fake_upstream):
    async def call() -> None:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake_upstream.url))
        contents = [
            types.Content(
                role="user",
                parts=[
                    types.Part(inline_data=types.Blob(mime_type="image/png", data=PNG)),
                    types.Part(file_data=types.FileData(file_uri="https://example.com/a.pdf")),
                ],
            ),
            types.Content(
                role="model", parts=[types.Part(function_call=types.FunctionCall(name="f", args={}))]
            ),
            types.Content(
                role="user",
                parts=[
                    types.Part(function_response=types.FunctionResponse(name="f", response={"result": 1}))
                ],
            ),
        ]
        try:
            await client.aio.models.generate_content(model="g", contents=contents)
        finally:
            await client.aio.aclose()

    asyncio.run(call())

    [request] = fake_upstream.requests()
    assert request["status"] == 200
    body = wire_names(request["body"])
    parts = [content["parts"][0] for content in body["contents"]]
    assert set(parts[0]) == {"inlineData"} and parts[1] == {"functionCall": {"name": "f", "args": {}}}
    assert parts[2] == {"functionResponse": {"name": "f", "response": {"result": 1}}}
    assert body["contents"][0]["parts"][1] == {"fileData": {"fileUri": "https://example.com/a.pdf"}}
