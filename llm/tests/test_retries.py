"""Failures before the first token are retried with backoff, up to the provider's retry count."""

from __future__ import annotations

import pytest

from llm.tests.conftest import run
from llm.types import Served

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_flaky_first_attempt_is_retried(fake_upstream, kind, status):
    fake_upstream.configure(error_status=status, fail_times=1, reply="Second time lucky.")
    fake_upstream.make_model(kind=kind, name="m")

    outcome = run("m")

    assert outcome.error is None
    assert outcome.text == "Second time lucky."
    assert outcome.of(Served)[0].attempts == 2
    assert [request["status"] for request in fake_upstream.requests()] == [status, 200]


def test_it_gives_up_after_the_providers_retry_count(fake_upstream):
    fake_upstream.configure(error_status=503)
    fake_upstream.make_model(kind="openai", name="m", provider_fields={"max_retries": 3})

    outcome = run("m")

    assert outcome.failure.code == "upstream_unavailable"
    assert len(fake_upstream.requests()) == 4


def test_a_bad_request_is_not_retried(fake_upstream):
    fake_upstream.configure(error_status=400)
    fake_upstream.make_model(kind="anthropic", name="m", provider_fields={"max_retries": 3})

    assert run("m").failure.code == "upstream_bad_request"
    assert len(fake_upstream.requests()) == 1


def test_a_retry_waits_at_least_what_the_provider_asks(fake_upstream):
    fake_upstream.configure(error_status=429, fail_times=1, retry_after=0.3)
    fake_upstream.make_model(kind="openai", name="m")

    outcome = run("m")

    first, second = fake_upstream.requests()
    assert outcome.error is None
    assert second["time"] - first["time"] >= 0.3


def test_a_provider_asking_to_wait_too_long_is_not_retried(fake_upstream):
    fake_upstream.configure(error_status=429, retry_after=3600)
    fake_upstream.make_model(kind="openai", name="m", provider_fields={"max_retries": 3})

    assert run("m").failure.code == "upstream_rate_limited"
    assert len(fake_upstream.requests()) == 1
