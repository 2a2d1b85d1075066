"""A connection cut, or an error event, mid-reply yields the partial text, then an LLMError, and no retry."""

from __future__ import annotations

import pytest

from llm.tests.conftest import run
from llm.types import Finish, Served, Usage

pytestmark = pytest.mark.django_db


def test_a_cut_connection_yields_the_partial_text_then_an_error(fake_upstream, kind):
    fake_upstream.configure(tokens=10, cut_after=4)
    fake_upstream.make_model(kind=kind, name="m")

    outcome = run("m")

    assert outcome.text == "word1 word2 word3 word4"
    assert outcome.error is not None
    assert outcome.failure.code == "upstream_unavailable"
    assert len(outcome.of(Served)) == 1
    assert outcome.of(Usage) == [] and outcome.of(Finish) == []
    assert len(fake_upstream.requests()) == 1


def test_a_connection_cut_before_the_first_token_is_retried(fake_upstream):
    fake_upstream.configure(tokens=3, cut_after=0)
    fake_upstream.make_model(kind="openai", name="m", provider_fields={"max_retries": 1})

    outcome = run("m")

    assert outcome.failure.code == "upstream_unavailable"
    assert len(fake_upstream.requests()) == 2


def test_an_error_event_mid_stream_yields_the_partial_text_then_an_error(fake_upstream, kind):
    fake_upstream.configure(tokens=10, stream_error_after=3)
    fake_upstream.make_model(kind=kind, name="m")

    outcome = run("m")

    assert outcome.text == "word1 word2 word3"
    assert outcome.failure.code == "upstream_unavailable"
    assert len(fake_upstream.requests()) == 1


def test_an_error_event_before_the_first_token_is_retried(fake_upstream, kind):
    fake_upstream.configure(tokens=3, stream_error_after=0)
    fake_upstream.make_model(kind=kind, name="m", provider_fields={"max_retries": 1})

    outcome = run("m")

    assert outcome.failure.code == "upstream_unavailable"
    assert len(fake_upstream.requests()) == 2
