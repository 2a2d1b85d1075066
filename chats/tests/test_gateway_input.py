"""The gateway's request parsing, without a server: what it refuses before any work."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chats.completions import InvalidParameter, parse_completion_request
from llm.parameters import OPTIONS, PARAMETERS
from nexus.lib.errors import ApiError


def body(**fields):
    return {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}], **fields}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": "gpt\x00test"}, "model"),
        ({"messages": [{"role": "user", "content": "a\x00b"}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "\x00"}]}]},
            "messages[0].content[0].text",
        ),
        (
            {"messages": [{"role": "system", "content": "\x00"}, {"role": "user", "content": "Hi"}]},
            "messages[0].content",
        ),
    ],
    ids=["model", "content", "text-part", "system"],
)
def test_a_null_character_is_refused_naming_where_it_is(fields, param):
    # PostgreSQL's text cannot hold it: without this the model lookup, or the save of an
    # X-Nexus-Save exchange, failed with a 500.
    with pytest.raises(InvalidParameter) as refused:
        parse_completion_request(body(**fields))
    assert refused.value.param == param
    assert refused.value.status_code == 400


def test_ordinary_text_passes():
    call = parse_completion_request(body())
    assert (call.model, call.request.messages[0].content, call.stream, call.include_usage) == (
        "gpt-test",
        "Hi",
        False,
        False,
    )


# A valid value of each parameter of llm.parameters' table, as a client would send it.
EXAMPLES = {
    "temperature": 0.5,
    "top_p": 0.5,
    "top_k": 40,
    "max_tokens": 10,
    "stop": ["END"],
    "n": 2,
    "seed": 1,
    "presence_penalty": 0.5,
    "frequency_penalty": -0.5,
    "logit_bias": {"42": 10},
    "logprobs": True,
    "top_logprobs": 2,
    "tools": [{"type": "function", "function": {"name": "f"}}],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "response_format": {"type": "json_object"},
    "reasoning_effort": "minimal",
    "verbosity": "high",
    "user": "u-1",
    "metadata": {"k": "v"},
    "prompt_cache_key": "p",
    "prompt_cache_retention": "24h",
    "safety_identifier": "s",
    "service_tier": "flex",
    "store": True,
    "modalities": ["text"],
    "audio": {"voice": "alloy", "format": "mp3"},
    "prediction": {"type": "content", "content": "x"},
    "web_search_options": {},
}


def test_every_parameter_of_the_provider_table_is_read():
    assert set(EXAMPLES) == set(PARAMETERS)
    call = parse_completion_request(body(**EXAMPLES))
    request = call.request
    assert request.options.keys() == OPTIONS
    assert (request.temperature, request.top_p, request.max_tokens, request.stop) == (0.5, 0.5, 10, ("END",))
    assert request.tools[0].name == "f" and request.tool_choice is not None
    assert request.parallel_tool_calls is False
    assert request.response_format is not None and request.response_format.type == "json_object"
    assert call.needs == {"tools": "tools", "structured_output": "response_format"}


def test_leading_system_messages_are_the_prompt_and_later_ones_keep_their_place():
    call = parse_completion_request(
        body(
            messages=[
                {"role": "system", "content": "One."},
                {"role": "developer", "content": [{"type": "text", "text": "Two."}]},
                {"role": "user", "content": "Hi"},
                {"role": "system", "content": "Three."},
            ]
        )
    )
    assert call.request.system == "One.\n\nTwo."
    assert [(m.role, m.text) for m in call.request.messages] == [("user", "Hi"), ("system", "Three.")]


def test_a_tool_result_knows_the_name_of_the_function_it_answers():
    call = parse_completion_request(
        body(
            messages=[
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            ]
        )
    )
    tool = call.request.messages[-1]
    assert (tool.role, tool.tool_call_id, tool.name, tool.text) == ("tool", "c1", "weather", "sunny")
    assert call.needs["tools"] == "messages[1].tool_calls"


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (
            [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}],
            "messages[0].content[0].image_url.url",
        ),
        (
            [{"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}],
            "messages[0].content[0].image_url.url",
        ),
        (
            [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}],
            "messages[0].content[0].image_url.url",
        ),
        (
            [{"type": "input_audio", "input_audio": {"data": "aGk=", "format": "ogg"}}],
            "messages[0].content[0].input_audio.format",
        ),
        ([{"type": "video", "video": {}}], "messages[0].content[0]"),
        ([{"type": "text"}], "messages[0].content[0].text"),
    ],
    ids=["not-http", "not-an-image", "bad-base64", "audio-format", "unknown-part", "text-without-text"],
)
def test_a_bad_content_part_is_refused_naming_it(content, param):
    with pytest.raises(InvalidParameter) as refused:
        parse_completion_request(body(messages=[{"role": "user", "content": content}]))
    assert refused.value.param == param


def test_an_inline_image_past_the_limit_is_a_413(settings):
    settings.MAX_IMAGE_BYTES = 1024
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 4000}}
    with pytest.raises(ApiError) as refused:
        parse_completion_request(body(messages=[{"role": "user", "content": [image]}]))
    assert (refused.value.status_code, refused.value.code) == (413, "image_too_large")


# --- whatever a client sends -----------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
_part = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image_url", "input_audio", "file", "refusal", "video"])},
    optional={
        "text": _json,
        "refusal": _json,
        "image_url": _json
        | st.fixed_dictionaries({"url": st.sampled_from(["data:image/png;base64,aGk=", "x"])}),
        "input_audio": _json,
        "file": _json,
    },
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "bot"])},
    optional={
        "content": _json | st.lists(_part, max_size=3),
        "tool_calls": _json,
        "tool_call_id": _json,
        "name": _json,
        "function_call": _json,
    },
)
_body = st.fixed_dictionaries(
    {"model": st.just("m") | _json, "messages": st.lists(_message, max_size=4) | _json},
    optional={
        name: _json for name in (*PARAMETERS, "stream", "stream_options", "functions", "function_call")
    },
)


@settings(max_examples=400, deadline=None)
@given(_body)
def test_any_body_a_client_sends_is_read_or_refused_with_a_4xx(body):
    try:
        parse_completion_request(body)
    except ApiError as refused:
        assert 400 <= refused.status_code < 500


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_a_reply_whose_events_are_gone_is_a_502_not_a_500(stream):
    """A stream with no events left to read (its buffer expired or was lost) ends as an
    interrupted reply in OpenAI's shape, never an IndexError."""
    from types import SimpleNamespace

    from chats.gateway import Completion, PendingCompletion

    call = parse_completion_request(body(stream=stream))
    prepared = SimpleNamespace(
        stream_key="gateway:nobody-wrote-this", conversation_id=None, dropped_params=()
    )
    pending = PendingCompletion(prepared, Completion(prepared, call))  # type: ignore[arg-type]
    response: Any = await pending.read()
    assert response.status_code == 502
    assert json.loads(response.content)["error"]["code"] == "interrupted"
