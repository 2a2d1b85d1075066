"""`manage.py seed` turns the SDKs' environment variables into providers and models, once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from llm import crypto
from llm.models import Model, Provider
from llm.seed import seed

pytestmark = pytest.mark.django_db

CREDENTIALS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "OPENAI_API_VERSION",
    "AZURE_OPENAI_DEPLOYMENTS",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "GEMINI_API_KEY",
    "GEMINI_BASE_URL",
    "DEEPSEEK_API_KEY",
    "DEEPSEEK_BASE_URL",
    "OPENAI_COMPATIBLE_BASE_URL",
    "OPENAI_COMPATIBLE_API_KEY",
    "OPENAI_COMPATIBLE_MODELS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)


def test_with_nothing_configured_it_seeds_the_demo_provider(settings):
    settings.SEED_DEMO_PROVIDER = True

    lines = list(seed(demo=False))

    assert [(p.name, p.kind) for p in Provider.objects.all()] == [("demo", "demo")]
    demo = Model.objects.get(name="demo")
    assert demo.input_price_per_million == demo.output_price_per_million == Decimal("0")
    assert any("demo" in line for line in lines)


def test_the_demo_provider_can_be_switched_off(settings):
    settings.SEED_DEMO_PROVIDER = False

    list(seed(demo=False))

    assert not Provider.objects.exists()


def test_each_credential_becomes_a_provider_with_its_catalog(monkeypatch, settings):
    settings.SEED_DEMO_PROVIDER = False
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://proxy.example.com/v1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant")
    monkeypatch.setenv("GEMINI_API_KEY", "gm-key")
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-ds")

    list(seed(demo=False))

    providers = {provider.name: provider for provider in Provider.objects.all()}
    assert {name: provider.kind for name, provider in providers.items()} == {
        "openai": "openai",
        "anthropic": "anthropic",
        "gemini": "gemini",
        "deepseek": "deepseek",
    }
    assert providers["openai"].base_url == "https://proxy.example.com/v1"
    assert crypto.decrypt(providers["anthropic"].api_key_encrypted) == "sk-ant"
    for provider in providers.values():
        models = list(provider.models.filter(kind="chat"))
        assert models, provider.name
        assert all(
            model.input_price_per_million > 0 and model.output_price_per_million > 0 for model in models
        )
        assert all(model.context_window > 1000 and model.max_output_tokens > 1000 for model in models)


def test_azure_deployments_and_compatible_models_are_seeded(monkeypatch, settings):
    settings.SEED_DEMO_PROVIDER = False
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-key")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://mine.openai.azure.com")
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-04-01-preview")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENTS", "chat=gpt-5.4-mini, custom")
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("OPENAI_COMPATIBLE_MODELS", "llama3.3,qwen3")

    list(seed(demo=False))

    azure = Provider.objects.get(kind="azure_openai")
    assert (azure.base_url, azure.api_version) == ("https://mine.openai.azure.com", "2025-04-01-preview")
    chat = Model.objects.get(name="azure/chat")
    assert chat.upstream_name == "chat"
    assert chat.input_price_per_million == Decimal("0.75")  # gpt-5.4-mini's list price
    assert Model.objects.get(name="azure/custom").input_price_per_million == 0
    compatible = Provider.objects.get(kind="openai_compatible")
    assert compatible.api_key_encrypted == ""
    assert sorted(compatible.models.values_list("name", flat=True)) == ["llama3.3", "qwen3"]


def test_running_it_again_changes_nothing_an_operator_edited(monkeypatch, settings):
    settings.SEED_DEMO_PROVIDER = True
    monkeypatch.setenv("OPENAI_API_KEY", "sk-first")
    list(seed(demo=False))
    provider = Provider.objects.get(name="openai")
    model = provider.models.order_by("name")[0]
    model.input_price_per_million = Decimal("99")
    model.save()
    provider.base_url = "https://edited.example.com/v1"
    provider.save()
    Model.objects.filter(name="demo").update(enabled=False)
    count = Model.objects.count()

    monkeypatch.setenv("OPENAI_API_KEY", "sk-second")
    lines = list(seed(demo=False))

    provider.refresh_from_db()
    model.refresh_from_db()
    assert model.input_price_per_million == Decimal("99")
    assert provider.base_url == "https://edited.example.com/v1"
    assert crypto.decrypt(provider.api_key_encrypted) == "sk-first"
    assert not Model.objects.get(name="demo").enabled
    assert Model.objects.count() == count
    assert any("left as it is" in line for line in lines)


def test_a_bad_base_url_is_reported_not_raised(monkeypatch, settings):
    settings.SEED_DEMO_PROVIDER = False
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("OPENAI_BASE_URL", "not a url")

    lines = list(seed(demo=False))

    assert not Provider.objects.exists()
    assert any("not created" in line and "base_url" in line for line in lines)
