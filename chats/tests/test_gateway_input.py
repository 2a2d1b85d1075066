"""The gateway's request parsing, without a server: what it refuses before any work."""

from __future__ import annotations

import pytest

from chats.completions import InvalidParameter, parse_completion_request


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
