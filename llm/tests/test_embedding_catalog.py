"""The catalog's model kinds and aliases: what may be an embedding model, which names an alias
may take, how routes resolve them, and what `seed` offers."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from llm import services
from llm.models import Model, ModelAlias, Provider
from llm.providers.demo import vector_for
from llm.seed import seed
from llm.selectors import route_get
from llm.tests.test_seed import CREDENTIALS
from llm.types import UnknownModel
from nexus.lib.errors import ApiError

pytestmark = pytest.mark.django_db


@pytest.fixture
def openai_provider():
    return Provider.objects.create(name="openai", kind="openai")


def test_an_embedding_model_on_anthropic_is_refused(openai_provider):
    anthropic = Provider.objects.create(name="anthropic", kind="anthropic")

    with pytest.raises(ApiError) as error:
        services.model_create(name="embed", provider=anthropic, upstream_name="embed", kind="embedding")

    assert "kind" in (error.value.fields or {})
    assert "no embeddings API" in error.value.message
    services.model_create(name="embed", provider=openai_provider, upstream_name="embed", kind="embedding")


def test_an_embedding_model_has_no_output_price(openai_provider):
    with pytest.raises(ApiError) as error:
        services.model_create(
            name="embed",
            provider=openai_provider,
            upstream_name="embed",
            kind="embedding",
            output_price_per_million=Decimal("1"),
        )

    assert "output_price_per_million" in (error.value.fields or {})


def test_a_provider_serving_embedding_models_cannot_become_anthropic(openai_provider):
    services.model_create(name="embed", provider=openai_provider, upstream_name="embed", kind="embedding")

    with pytest.raises(ApiError) as error:
        services.provider_update(provider=openai_provider, kind="anthropic")

    assert "kind" in (error.value.fields or {})


def test_a_fallback_must_be_of_the_models_kind(openai_provider):
    services.model_create(name="embed", provider=openai_provider, upstream_name="embed", kind="embedding")

    with pytest.raises(ApiError) as error:
        services.model_create(
            name="chat", provider=openai_provider, upstream_name="chat", fallbacks=["embed"]
        )

    assert error.value.param == "fallbacks"


def test_an_alias_resolves_to_its_models_route_and_carries_the_kind(openai_provider):
    model = services.model_create(
        name="embed", provider=openai_provider, upstream_name="up", kind="embedding"
    )
    services.model_alias_create(name="text-embedding-ada-002", model=model)

    route = route_get(name="text-embedding-ada-002")

    assert (route.primary.name, route.primary.upstream_name, route.primary.kind) == (
        "embed",
        "up",
        "embedding",
    )
    assert route_get(name="embed").primary == route.primary


def test_an_alias_of_a_disabled_model_is_unknown_as_the_model_is(openai_provider):
    model = services.model_create(name="gpt", provider=openai_provider, upstream_name="gpt", enabled=False)
    services.model_alias_create(name="gpt-4o-mini", model=model)

    with pytest.raises(UnknownModel) as error:
        route_get(name="gpt-4o-mini")

    assert error.value.name == "gpt-4o-mini"


@pytest.mark.django_db(transaction=True)
def test_a_new_alias_reaches_the_routes_at_once(openai_provider):
    model = services.model_create(name="gpt", provider=openai_provider, upstream_name="gpt")
    with pytest.raises(UnknownModel):
        route_get(name="gpt-4o-mini")

    alias = services.model_alias_create(name="gpt-4o-mini", model=model)
    assert route_get(name="gpt-4o-mini").primary.name == "gpt"

    alias.delete()
    with pytest.raises(UnknownModel):
        route_get(name="gpt-4o-mini")


def test_an_alias_may_not_take_a_models_name_nor_a_model_an_aliass(openai_provider):
    gpt = services.model_create(name="gpt", provider=openai_provider, upstream_name="gpt")
    services.model_create(name="other", provider=openai_provider, upstream_name="other")
    services.model_alias_create(name="gpt-4o-mini", model=gpt)

    with pytest.raises(ApiError) as by_model_name:
        services.model_alias_create(name="other", model=gpt)
    with pytest.raises(ApiError) as by_alias_name:
        services.model_create(name="gpt-4o-mini", provider=openai_provider, upstream_name="x")
    with pytest.raises(ApiError) as twice:
        services.model_alias_create(name="gpt-4o-mini", model=gpt)

    assert "name of a model" in by_model_name.value.message
    assert "already an alias" in by_alias_name.value.message
    assert "name" in (twice.value.fields or {})
    assert list(ModelAlias.objects.values_list("name", flat=True)) == ["gpt-4o-mini"]


def test_the_catalog_api_sets_and_shows_a_models_kind_and_aliases(api_client, openai_provider):
    admin = get_user_model().objects.create_superuser(email="admin@example.com", password="a-long-password-1")
    api_client.force_authenticate(admin)

    created = api_client.post(
        "/llm/models",
        {
            "name": "embed",
            "provider": openai_provider.pk,
            "upstream_name": "text-embedding-3-small",
            "kind": "embedding",
            "aliases": ["text-embedding-ada-002"],
        },
        format="json",
    )
    refused = api_client.patch(f"/llm/models/{created.json()['id']}", {"aliases": ["embed"]}, format="json")
    listed = api_client.get("/llm/models")

    assert created.status_code == 201, created.json()
    assert (created.json()["kind"], created.json()["aliases"]) == ("embedding", ["text-embedding-ada-002"])
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "aliases"
    assert listed.json()["results"][0]["kind"] == "embedding"


def test_the_model_page_edits_its_aliases_inline(client, openai_provider):
    client.force_login(
        get_user_model().objects.create_superuser(email="admin@example.com", password="a-long-password-1")
    )
    model = services.model_create(name="gpt", provider=openai_provider, upstream_name="gpt")
    services.model_create(name="taken", provider=openai_provider, upstream_name="taken")
    page = client.get(f"/admin/llm/model/{model.pk}/change/").content.decode()
    assert 'name="aliases-TOTAL_FORMS"' in page

    def post(alias: str) -> str:
        form = {
            "name": "gpt",
            "kind": "chat",
            "provider": str(openai_provider.pk),
            "upstream_name": "gpt",
            "display_name": "",
            "enabled": "on",
            "input_price_per_million": "0",
            "output_price_per_million": "0",
            "context_window": "8192",
            "max_output_tokens": "4096",
            "default_params": "{}",
            "fallback_entries-TOTAL_FORMS": "0",
            "fallback_entries-INITIAL_FORMS": "0",
            "aliases-TOTAL_FORMS": "1",
            "aliases-INITIAL_FORMS": "0",
            "aliases-0-name": alias,
        }
        return client.post(f"/admin/llm/model/{model.pk}/change/", form).content.decode()

    assert "name of a model" in post("taken")
    post("gpt-4o-mini")
    assert list(model.aliases.values_list("name", flat=True)) == ["gpt-4o-mini"]


# --- seeding ----------------------------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch):
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)


def test_seed_adds_each_providers_embedding_models_at_their_list_prices(
    monkeypatch, settings, clean_environment
):
    settings.SEED_DEMO_PROVIDER = True
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.setenv(variable, "sk-test")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-key")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://mine.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENTS", "chat=gpt-5.4-mini,embed=text-embedding-3-small")

    list(seed(demo=False))

    embedders = {
        model.name: (model.provider.name, model.input_price_per_million, model.output_price_per_million)
        for model in Model.objects.filter(kind="embedding").select_related("provider")
    }
    assert embedders == {
        "text-embedding-3-small": ("openai", Decimal("0.02"), 0),
        "text-embedding-3-large": ("openai", Decimal("0.13"), 0),
        "gemini-embedding-001": ("gemini", Decimal("0.15"), 0),
        "azure/embed": ("azure-openai", Decimal("0.02"), 0),
        "demo-embedding": ("demo", 0, 0),
    }
    assert Model.objects.get(name="azure/chat").kind == "chat"
    assert Model.objects.get(name="demo").kind == "chat"
    assert route_get(name="demo-embedding").primary.kind == "embedding"


# --- the demo's vectors -------------------------------------------------------------------------


def test_the_demo_embeds_offline_alike_for_alike_texts():
    cat, kitten, tax = (
        vector_for("the cat sat on the mat", 256),
        vector_for("a cat sat on a mat", 256),
        vector_for("quarterly tax filing deadline", 256),
    )

    def cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert vector_for("the cat sat on the mat", 256) == cat
    assert math.isclose(cosine(cat, cat), 1.0)
    assert cosine(cat, kitten) > 0.5 > abs(cosine(cat, tax))
    assert len(vector_for((1, 2, 3), 64)) == 64
    assert math.isclose(cosine(vector_for("!!!", 16), vector_for("!!!", 16)), 1.0)
