"""JSON logs: one line per request and per AI call, with ids and timings, and never the text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from chats.tests.conftest import read_events, send
from nexus.lib.logging import JsonFormatter, RequestIdFilter

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = "my confidential plan for the merger"
REPLY = "the assistant's private answer"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above, as the production JSON handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_an_ai_call_is_logged_with_ids_outcome_and_durations(async_client, chat, json_log):
    chat.upstream.configure(reply=REPLY, token_delay=0.001)
    headers = {**chat.user_headers, "X-Request-ID": "trace-4711"}
    events = await read_events(await send(async_client, headers, message=PROMPT, model="gpt-test"))
    assert events[-1].event == "done"

    calls = [line for line in lines(json_log) if line["logger"] == "nexus.ai"]
    assert len(calls) == 1
    call = calls[0]
    assert call["request_id"] == "trace-4711"
    assert call["user_id"] == chat.user.pk
    assert (call["model"], call["provider"], call["outcome"]) == (
        "gpt-test",
        chat.model.provider.name,
        "complete",
    )
    assert call["output_tokens"] == 4
    assert call["duration_ms"] >= call["ttft_ms"] >= 0
    assert call["error_code"] is None


async def test_the_request_is_logged_by_route_with_its_user(async_client, chat, json_log):
    await read_events(await send(async_client, chat.user_headers, message=PROMPT, model="gpt-test"))
    requests = [line for line in lines(json_log) if line["logger"] == "nexus.http"]
    send_line = next(line for line in requests if line["route"] == "/chat/send")
    assert (send_line["method"], send_line["status"], send_line["user_id"]) == ("POST", 200, chat.user.pk)
    assert send_line["duration_ms"] >= 0
    assert send_line["request_id"] != "-"


async def test_no_prompt_reply_or_credential_is_ever_logged(async_client, chat, json_log):
    chat.upstream.configure(reply=REPLY)
    await read_events(await send(async_client, chat.user_headers, message=PROMPT, model="gpt-test"))
    chat.upstream.configure(error_status=401)
    await read_events(await send(async_client, chat.user_headers, message=PROMPT, model="gpt-test"))
    text = json_log.getvalue()
    assert "nexus.ai" in text
    token = chat.user_headers["Authorization"].split()[1]
    for secret in (PROMPT, REPLY, token, "sk-fake-openai"):
        assert secret not in text


def test_extras_named_like_text_or_credentials_are_redacted():
    record = logging.LogRecord("nexus.test", logging.INFO, __file__, 1, "turn saved", None, None)
    record.prompt, record.api_key, record.model = PROMPT, "sk-live-123", "gpt-test"
    line = json.loads(JsonFormatter().format(record))
    assert (line["prompt"], line["api_key"], line["model"]) == ("[redacted]", "[redacted]", "gpt-test")
