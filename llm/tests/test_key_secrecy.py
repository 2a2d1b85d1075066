"""A provider's API key never appears in an error message, a log line, or a repr."""

from __future__ import annotations

import logging

import pytest

from llm.selectors import route_get
from llm.tests.conftest import run

pytestmark = pytest.mark.django_db

KEY = "sk-secret-0123456789abcdefghijklmnop"


def test_a_rejected_key_is_not_in_the_error_or_the_logs(fake_upstream, kind, caplog):
    caplog.set_level(logging.DEBUG)
    # The fake echoes the whole key it received when it refuses it, as providers echo part of it.
    fake_upstream.configure(api_key="sk-the-right-one")
    fake_upstream.make_model(kind=kind, name="m", api_key=KEY)

    outcome = run("m")

    assert outcome.failure.code == "upstream_auth"
    assert KEY not in outcome.failure.message and KEY not in str(outcome.failure)
    assert KEY[-8:] not in outcome.failure.message
    assert not [record for record in caplog.records if KEY in record.getMessage()]


def test_a_key_quoted_in_any_upstream_error_is_blotted_out(fake_upstream, kind, caplog):
    caplog.set_level(logging.DEBUG)
    fake_upstream.configure(error_status=503, error_message=f"Overloaded while serving key {KEY}")
    fake_upstream.make_model(kind=kind, name="m", api_key=KEY, provider_fields={"max_retries": 1})

    outcome = run("m")

    assert outcome.failure.code == "upstream_unavailable"
    # The provider's text is for the log only (llm/tests/test_error_messages.py), and redacted.
    assert "Overloaded while serving key [redacted]" in outcome.failure.detail
    assert "Overloaded" not in outcome.failure.message
    assert caplog.records, "the retry is logged"
    assert not [record for record in caplog.records if KEY in record.getMessage()]
    assert not [record for record in caplog.records if record.exc_text and KEY in record.exc_text]


def test_the_key_reaches_the_upstream_in_the_protocols_header(fake_upstream, kind):
    fake_upstream.make_model(kind=kind, name="m", api_key=KEY)

    run("m")

    headers = fake_upstream.requests()[0]["headers"]
    sent = {
        "azure_openai": headers.get("api-key"),
        "anthropic": headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer "),
        "gemini": headers.get("x-goog-api-key"),
    }.get(kind, headers.get("authorization", "").removeprefix("Bearer "))
    assert sent == KEY


def test_a_route_never_shows_its_key(fake_upstream):
    fake_upstream.make_model(kind="openai", name="m", api_key=KEY)

    route = route_get(name="m")

    assert route.primary.provider.api_key == KEY
    assert KEY not in repr(route) and KEY not in str(route)
