"""Every provider's error statuses become one LLMError with a code, and nothing is served."""

from __future__ import annotations

import pytest

from llm.tests.conftest import run
from llm.types import Served

pytestmark = pytest.mark.django_db

# The provider's status, Nexus's code, and the status a client gets before anything streamed.
STATUSES = [
    (400, "upstream_bad_request", 400),
    (401, "upstream_auth", 502),
    (403, "upstream_auth", 502),
    (404, "upstream_bad_request", 400),
    (429, "upstream_rate_limited", 429),
    (500, "upstream_unavailable", 502),
    (503, "upstream_unavailable", 502),
    (504, "upstream_timeout", 504),
]


@pytest.mark.parametrize(("status", "code", "answered"), STATUSES)
def test_each_error_status_maps_to_its_code(fake_upstream, kind, status, code, answered):
    fake_upstream.configure(error_status=status)
    fake_upstream.make_model(kind=kind, name="m", provider_fields={"max_retries": 0})

    outcome = run("m")

    assert outcome.error is not None
    assert outcome.failure.code == code
    assert outcome.failure.status_code == answered
    assert outcome.of(Served) == []


def test_a_context_length_error_has_its_own_code(fake_upstream, kind):
    fake_upstream.configure(error_status=400, context_length=True)
    fake_upstream.make_model(kind=kind, name="m")

    outcome = run("m")

    assert outcome.failure.code == "context_length"
    assert outcome.failure.status_code == 400


def test_rate_limits_and_server_errors_are_retryable_and_bad_requests_are_not(fake_upstream):
    fake_upstream.make_model(kind="openai", name="m", provider_fields={"max_retries": 0})

    fake_upstream.configure(error_status=429)
    assert run("m").failure.retryable
    fake_upstream.configure(error_status=502)
    assert run("m").failure.retryable
    fake_upstream.configure(error_status=400)
    assert not run("m").failure.retryable


def test_an_unreachable_provider_is_unavailable(fake_upstream, kind):
    model = fake_upstream.make_model(kind=kind, name="m", provider_fields={"max_retries": 0})
    model.provider.base_url = (
        "http://127.0.0.1:9/v1" if "openai" in kind or kind == "deepseek" else "http://127.0.0.1:9"
    )
    model.provider.save()

    outcome = run("m")

    assert outcome.failure.code == "upstream_unavailable"
    assert outcome.failure.retryable
