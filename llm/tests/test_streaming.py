"""Every provider kind streams the upstream's reply through its official SDK, chunk by chunk."""

from __future__ import annotations

import pytest

from llm.tests.conftest import ask, run
from llm.types import Finish, Served, TextDelta, Usage

pytestmark = pytest.mark.django_db


def test_the_streamed_text_is_what_the_upstream_sent(fake_upstream, kind):
    fake_upstream.configure(reply="Streams are fun, aren't they? Yes: très fun.")
    fake_upstream.make_model(kind=kind, name="m")

    outcome = run("m")

    assert outcome.error is None
    assert outcome.text == "Streams are fun, aren't they? Yes: très fun."
    assert isinstance(outcome.events[0], Served)
    assert outcome.events[0].target.name == "m"
    assert outcome.events[0].attempts == 1
    assert outcome.events[-1] == Finish("stop")
    [received] = fake_upstream.requests()
    protocols = {"azure_openai": "azure_openai", "anthropic": "anthropic", "gemini": "gemini"}
    assert received["protocol"] == protocols.get(kind, "openai")
    assert received["stream"] is True


def test_chunks_arrive_one_by_one_as_the_upstream_sends_them(fake_upstream, kind):
    fake_upstream.configure(tokens=12, token_delay=0.02)
    fake_upstream.make_model(kind=kind, name="m")

    outcome = run("m")

    deltas = [
        time
        for time, event in zip(outcome.times, outcome.events, strict=True)
        if isinstance(event, TextDelta)
    ]
    assert len(deltas) == 12
    # Loosely: the first word arrives well before the last, not all at once at the end.
    assert deltas[-1] - deltas[0] > 0.1


def test_the_usage_the_upstream_reports_is_captured(fake_upstream, kind):
    fake_upstream.configure(tokens=7)
    fake_upstream.make_model(kind=kind, name="m")

    outcome = run("m", ask("one two three four five"))

    [usage] = outcome.of(Usage)
    reported = fake_upstream.requests()[0]["usage"]
    assert usage == Usage(input_tokens=reported["input_tokens"], output_tokens=7, estimated=False)
    assert outcome.events[-2] is usage


def test_missing_usage_is_estimated_and_marked_so(fake_upstream, kind):
    fake_upstream.configure(tokens=7, omit_usage=True)
    fake_upstream.make_model(kind=kind, name="m")

    outcome = run("m")

    [usage] = outcome.of(Usage)
    assert usage.estimated
    assert usage.input_tokens > 0
    assert usage.output_tokens >= 7


def test_a_length_limit_finishes_with_reason_length(fake_upstream, kind):
    fake_upstream.configure(tokens=3, finish_reason="length")
    fake_upstream.make_model(kind=kind, name="m")

    assert run("m").events[-1] == Finish("length")
