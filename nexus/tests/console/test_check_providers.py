"""`manage.py check_providers`: one tiny call per enabled provider; latency or error."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from llm.models import Provider

pytestmark = pytest.mark.django_db


def check() -> str:
    out = StringIO()
    call_command("check_providers", stdout=out)
    return out.getvalue()


def test_each_enabled_provider_answers_with_its_latency(fake_upstream):
    openai_model = fake_upstream.make_model(kind="openai", name="gpt-check")
    anthropic_model = fake_upstream.make_model(kind="anthropic", name="claude-check")
    output = check()
    for model in (openai_model, anthropic_model):
        line = next(line for line in output.splitlines() if line.startswith(model.provider.name))
        assert model.name in line and "ok" in line and line.endswith(" ms")
    assert "All 2 providers answered." in output
    sent = fake_upstream.requests()
    assert len(sent) == 2  # one tiny call each, not retried


def test_a_failing_provider_is_named_with_its_error_and_the_command_fails(fake_upstream):
    good = fake_upstream.make_model(kind="openai", name="gpt-good")
    bad = fake_upstream.make_model(kind="anthropic", name="claude-bad", api_key="sk-wrong-key")
    fake_upstream.configure(api_key="sk-fake-openai-0123456789abcdef")
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 2 providers failed"):
        call_command("check_providers", stdout=out)
    lines = out.getvalue().splitlines()
    assert "ok" in next(line for line in lines if line.startswith(good.provider.name))
    failed = next(line for line in lines if line.startswith(bad.provider.name))
    assert "failed" in failed and "sk-wrong-key" not in failed


def test_disabled_providers_are_not_called(fake_upstream):
    model = fake_upstream.make_model(kind="openai", name="gpt-off")
    Provider.objects.filter(pk=model.provider_id).update(enabled=False)
    assert "No enabled provider." in check()
    assert fake_upstream.requests() == []


def test_a_provider_without_an_enabled_model_is_reported(fake_upstream):
    model = fake_upstream.make_model(kind="openai", name="gpt-disabled", enabled=False)
    with pytest.raises(CommandError):
        check()
    assert fake_upstream.requests() == []
    assert model.provider.name
