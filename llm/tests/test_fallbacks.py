"""When a model fails before its first token, its fallbacks are tried in order."""

from __future__ import annotations

import pytest

from llm.models import ModelFallback
from llm.tests.conftest import run
from llm.types import Served

pytestmark = pytest.mark.django_db


def failing(status: int) -> dict:
    """Provider fields that make the fake upstream fail every call of that provider."""
    return {"extra_headers": {"x-fake-error-status": str(status)}, "max_retries": 1}


def test_a_failing_model_falls_back_to_the_next_one(fake_upstream, kind):
    fake_upstream.configure(reply="The fallback answers.")
    primary = fake_upstream.make_model(kind=kind, name="primary", provider_fields=failing(503))
    broken = fake_upstream.make_model(kind="anthropic", name="broken", provider_fields=failing(500))
    backup = fake_upstream.make_model(kind="gemini" if kind != "gemini" else "openai", name="backup")
    ModelFallback.objects.create(model=primary, fallback=broken, position=0)
    ModelFallback.objects.create(model=primary, fallback=backup, position=1)

    outcome = run("primary")

    assert outcome.error is None
    assert outcome.text == "The fallback answers."
    [served] = outcome.of(Served)
    assert served.target.name == "backup"
    assert served.attempts == 5  # primary twice, broken twice, backup once
    assert [request["model"] for request in fake_upstream.requests()] == [
        "primary",
        "primary",
        "broken",
        "broken",
        "backup",
    ]


def test_when_every_model_fails_the_last_error_is_raised(fake_upstream):
    primary = fake_upstream.make_model(kind="openai", name="primary", provider_fields=failing(503))
    backup = fake_upstream.make_model(kind="openai", name="backup", provider_fields=failing(401))
    ModelFallback.objects.create(model=primary, fallback=backup)

    outcome = run("primary")

    assert outcome.failure.code == "upstream_auth"
    assert outcome.of(Served) == []


def test_a_bad_request_does_not_fall_back(fake_upstream):
    primary = fake_upstream.make_model(kind="openai", name="primary", provider_fields=failing(400))
    backup = fake_upstream.make_model(kind="openai", name="backup")
    ModelFallback.objects.create(model=primary, fallback=backup)

    assert run("primary").failure.code == "upstream_bad_request"
    assert [request["model"] for request in fake_upstream.requests()] == ["primary"]


def test_a_failure_after_the_first_token_does_not_fall_back(fake_upstream):
    fake_upstream.configure(tokens=10, cut_after=2)
    primary = fake_upstream.make_model(kind="openai", name="primary")
    backup = fake_upstream.make_model(kind="openai", name="backup")
    ModelFallback.objects.create(model=primary, fallback=backup)

    outcome = run("primary")

    assert outcome.text == "word1 word2"
    assert outcome.failure.code == "upstream_unavailable"
    assert len(fake_upstream.requests()) == 1
