"""A model name resolves to a route: the model, its provider and its enabled fallbacks, in one query."""

from __future__ import annotations

import pytest

from llm import crypto
from llm.models import Model, ModelFallback, Provider
from llm.selectors import route_get
from llm.types import UnknownModel

pytestmark = pytest.mark.django_db


def make_model(name: str, provider: Provider, **fields) -> Model:
    return Model.objects.create(provider=provider, name=name, upstream_name=f"up-{name}", **fields)


def test_it_resolves_the_model_its_provider_and_its_decrypted_key(django_assert_num_queries):
    provider = Provider.objects.create(
        name="openai",
        kind="openai",
        base_url="https://api.example.com/v1",
        api_key_encrypted=crypto.encrypt("sk-x"),
    )
    make_model("gpt", provider, default_params={"temperature": 0.5}, cache_enabled=True)

    with django_assert_num_queries(1):
        route = route_get(name="gpt")

    assert route.primary.name == "gpt"
    assert route.primary.upstream_name == "up-gpt"
    assert route.primary.default_params == {"temperature": 0.5}
    assert route.primary.cache_enabled
    assert route.primary.provider.kind == "openai"
    assert route.primary.provider.base_url == "https://api.example.com/v1"
    assert route.primary.provider.api_key == "sk-x"
    assert "sk-x" not in repr(route)
    assert route.fallbacks == ()


def test_it_lists_enabled_fallbacks_in_their_order(django_assert_num_queries):
    provider = Provider.objects.create(name="p", kind="demo")
    off = Provider.objects.create(name="off", kind="demo", enabled=False)
    main = make_model("main", provider)
    second = make_model("second", provider)
    first = make_model("first", provider)
    disabled = make_model("disabled", provider, enabled=False)
    on_disabled_provider = make_model("elsewhere", off)
    ModelFallback.objects.create(model=main, fallback=second, position=2)
    ModelFallback.objects.create(model=main, fallback=first, position=1)
    ModelFallback.objects.create(model=main, fallback=disabled, position=0)
    ModelFallback.objects.create(model=main, fallback=on_disabled_provider, position=0)
    ModelFallback.objects.create(model=second, fallback=first, position=0)

    with django_assert_num_queries(1):
        route = route_get(name="main")

    assert [target.name for target in route.targets] == ["main", "first", "second"]


@pytest.mark.parametrize("case", ["missing", "model disabled", "provider disabled"])
def test_it_refuses_unknown_or_disabled_models(case):
    provider = Provider.objects.create(name="p", kind="demo", enabled=case != "provider disabled")
    make_model("m", provider, enabled=case != "model disabled")

    with pytest.raises(UnknownModel):
        route_get(name="nope" if case == "missing" else "m")


def test_a_key_that_no_longer_decrypts_becomes_an_empty_key_not_a_crash(settings):
    provider = Provider.objects.create(name="p", kind="openai", api_key_encrypted=crypto.encrypt("sk-old"))
    make_model("m", provider)
    settings.NEXUS_ENCRYPTION_KEY = "V3K8d0sYz1o9S0wVZ9X8b5i7H7j3QmN1m2c4xRr6t8U="

    assert route_get(name="m").primary.provider.api_key == ""


@pytest.mark.django_db(transaction=True)
def test_a_route_is_read_once_and_dropped_when_the_catalog_changes(django_assert_num_queries):
    provider = Provider.objects.create(name="p", kind="openai", base_url="https://api.example.com/v1")
    gpt = make_model("gpt", provider)
    route_get(name="gpt")
    with django_assert_num_queries(0):
        assert route_get(name="gpt").primary.upstream_name == "up-gpt"

    gpt.upstream_name = "up-gpt-2"
    gpt.save()
    assert route_get(name="gpt").primary.upstream_name == "up-gpt-2"

    backup = make_model("backup", provider)
    ModelFallback.objects.create(model=gpt, fallback=backup, position=1)
    assert [target.name for target in route_get(name="gpt").fallbacks] == ["backup"]

    gpt.delete()
    with pytest.raises(UnknownModel):
        route_get(name="gpt")
