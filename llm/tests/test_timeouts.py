"""The provider's first-token, idle and total timeouts end a call with upstream_timeout."""

from __future__ import annotations

import pytest

from llm.models import ModelFallback
from llm.tests.conftest import run
from llm.types import Served

pytestmark = pytest.mark.django_db


def test_a_slow_first_token_times_out(fake_upstream, kind):
    fake_upstream.configure(first_token_delay=5)
    fake_upstream.make_model(
        kind=kind, name="m", provider_fields={"first_token_timeout": 0.3, "max_retries": 0}
    )

    outcome = run("m")

    assert outcome.failure.code == "upstream_timeout"
    assert outcome.failure.status_code == 504
    assert "first token" in outcome.failure.message
    assert outcome.of(Served) == []


def test_a_long_gap_between_tokens_times_out_after_the_partial_text(fake_upstream):
    fake_upstream.configure(tokens=3, token_delay=5)
    fake_upstream.make_model(kind="openai", name="m", provider_fields={"idle_timeout": 0.3})

    outcome = run("m")

    assert outcome.text == "word1"
    assert outcome.failure.code == "upstream_timeout"
    assert "no new token" in outcome.failure.message
    assert len(fake_upstream.requests()) == 1


def test_a_reply_longer_than_the_total_timeout_is_cut_off(fake_upstream):
    fake_upstream.configure(tokens=100, token_delay=0.05)
    fake_upstream.make_model(kind="anthropic", name="m", provider_fields={"total_timeout": 0.5})

    outcome = run("m")

    assert outcome.text.startswith("word1 word2")
    assert outcome.failure.code == "upstream_timeout"
    assert "complete reply" in outcome.failure.message


def test_a_timed_out_upstream_is_disconnected(fake_upstream):
    fake_upstream.configure(first_token_delay=5)
    fake_upstream.make_model(
        kind="gemini", name="m", provider_fields={"first_token_timeout": 0.3, "max_retries": 0}
    )

    run("m")

    [request] = fake_upstream.wait_for(lambda requests: requests[0]["closed_by_client"])
    assert request["closed_by_client"]


def test_a_slow_first_token_is_not_retried_but_falls_back(fake_upstream):
    primary = fake_upstream.make_model(
        kind="openai",
        name="slow",
        provider_fields={
            "first_token_timeout": 0.3,
            "max_retries": 3,
            "extra_headers": {"x-fake-first-token-delay": "5"},
        },
    )
    backup = fake_upstream.make_model(kind="anthropic", name="backup")
    fake_upstream.make_model(kind="openai", name="warm")
    # The first call of a process loads parts of the SDK lazily, which could eat the whole
    # 0.3 s before the request leaves: warm it up, so the timeout is the first token's.
    run("warm")
    fake_upstream.reset()
    ModelFallback.objects.create(model=primary, fallback=backup)

    outcome = run("slow")

    assert outcome.error is None
    assert [request["model"] for request in fake_upstream.requests()] == ["slow", "backup"]
