"""GET /llm/models lists the enabled models for anyone signed in; admins add, change and delete models."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework_simplejwt.tokens import AccessToken

from llm.models import Model, ModelFallback, Provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return get_user_model().objects.create_user(email="user@example.com", password="a-long-password-1")


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_superuser(email="admin@example.com", password="a-long-password-1")


@pytest.fixture
def provider():
    return Provider.objects.create(name="openai", kind="openai")


def make_model(provider, name, **fields):
    return Model.objects.create(provider=provider, name=name, upstream_name=name, **fields)


def test_it_lists_enabled_models_with_their_limits_prices_and_capabilities(
    api_client, user, provider, django_assert_num_queries
):
    make_model(
        provider,
        "gpt-b",
        context_window=128000,
        max_output_tokens=16000,
        input_price_per_million=Decimal("2.5"),
        output_price_per_million=Decimal("10"),
        supports_vision=False,
        supports_reasoning=True,
    )
    make_model(provider, "gpt-a")
    make_model(provider, "off", enabled=False)
    make_model(Provider.objects.create(name="gone", kind="demo", enabled=False), "on-disabled-provider")
    api_client.force_authenticate(user)

    with django_assert_num_queries(1):
        response = api_client.get("/llm/models")

    assert response.status_code == 200
    assert [model["id"] for model in response.json()["results"]] == ["gpt-a", "gpt-b"]
    assert response.json()["results"][1] == {
        "id": "gpt-b",
        "kind": "chat",
        "provider": "openai",
        "context_window": 128000,
        "max_output_tokens": 16000,
        "pricing": {"input_per_million": "2.500000", "output_per_million": "10.000000"},
        "capabilities": ["tools", "structured_output", "reasoning"],
    }


def test_it_takes_a_jwt(api_client, user, provider):
    make_model(provider, "gpt")

    response = api_client.get("/llm/models", HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")

    assert response.status_code == 200


def test_it_needs_credentials(api_client):
    response = api_client.get("/llm/models")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_user_cannot_add_change_or_read_the_admin_view_of_models(api_client, user, provider):
    model = make_model(provider, "gpt")
    api_client.force_authenticate(user)

    assert api_client.post("/llm/models", {"name": "x"}, format="json").status_code == 403
    assert api_client.get(f"/llm/models/{model.pk}").status_code == 403
    assert api_client.patch(f"/llm/models/{model.pk}", {"enabled": False}, format="json").status_code == 403
    assert api_client.delete(f"/llm/models/{model.pk}").status_code == 403


def test_an_admin_adds_a_model_with_its_fallbacks(api_client, admin_user, provider):
    make_model(provider, "backup-2")
    make_model(provider, "backup-1")
    api_client.force_authenticate(admin_user)

    response = api_client.post(
        "/llm/models",
        {
            "name": "gpt-new",
            "provider": provider.pk,
            "upstream_name": "gpt-5.4",
            "input_price_per_million": "2.50",
            "output_price_per_million": "15",
            "context_window": 400000,
            "default_params": {"temperature": 0.3},
            "fallbacks": ["backup-2", "backup-1"],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "gpt-new"
    assert body["input_price_per_million"] == "2.500000"
    assert body["fallbacks"] == ["backup-2", "backup-1"]
    model = Model.objects.get(name="gpt-new")
    assert [entry.fallback.name for entry in model.fallback_entries.order_by("position")] == [
        "backup-2",
        "backup-1",
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"input_price_per_million": "-1"}, "input_price_per_million"),
        ({"output_price_per_million": "-0.01"}, "output_price_per_million"),
        ({"provider": 999999}, "provider"),
        ({"fallbacks": ["nope"]}, "fallbacks"),
        ({"fallbacks": ["gpt-new"]}, "fallbacks"),
        ({"context_window": 0}, "context_window"),
        ({"default_params": {"temperature": "hot"}}, "default_params"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_model_fields_are_refused_with_the_field_named(api_client, admin_user, provider, change, field):
    api_client.force_authenticate(admin_user)
    data = {"name": "gpt-new", "provider": provider.pk, "upstream_name": "gpt", **change}

    response = api_client.post("/llm/models", data, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Model.objects.filter(name="gpt-new").exists()


def test_a_model_name_is_unique(api_client, admin_user, provider):
    make_model(provider, "gpt")
    api_client.force_authenticate(admin_user)

    response = api_client.post(
        "/llm/models", {"name": "gpt", "provider": provider.pk, "upstream_name": "x"}, format="json"
    )

    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_an_admin_changes_prices_and_replaces_the_fallbacks(api_client, admin_user, provider):
    model = make_model(provider, "gpt")
    old = make_model(provider, "old")
    new = make_model(provider, "new")
    ModelFallback.objects.create(model=model, fallback=old)
    api_client.force_authenticate(admin_user)

    response = api_client.patch(
        f"/llm/models/{model.pk}", {"output_price_per_million": "12.5", "fallbacks": ["new"]}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["fallbacks"] == ["new"]
    model.refresh_from_db()
    assert model.output_price_per_million == Decimal("12.5")
    assert list(model.fallbacks.all()) == [new]


def test_a_partial_change_keeps_the_rest(api_client, admin_user, provider):
    model = make_model(provider, "gpt", input_price_per_million=Decimal("3"))
    ModelFallback.objects.create(model=model, fallback=make_model(provider, "other"))
    api_client.force_authenticate(admin_user)

    response = api_client.patch(f"/llm/models/{model.pk}", {"enabled": False}, format="json")

    assert response.status_code == 200
    assert response.json()["input_price_per_million"] == "3.000000"
    assert response.json()["fallbacks"] == ["other"]
    assert response.json()["enabled"] is False


def test_a_negative_price_is_refused_on_change_too(api_client, admin_user, provider):
    model = make_model(provider, "gpt")
    api_client.force_authenticate(admin_user)

    response = api_client.patch(f"/llm/models/{model.pk}", {"input_price_per_million": "-3"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["input_price_per_million"]


def test_an_admin_deletes_a_model(api_client, admin_user, provider):
    model = make_model(provider, "gpt")
    api_client.force_authenticate(admin_user)

    assert api_client.delete(f"/llm/models/{model.pk}").status_code == 204
    assert not Model.objects.filter(pk=model.pk).exists()
    assert api_client.get(f"/llm/models/{model.pk}").status_code == 404


def test_model_permissions_are_djangos_own(api_client, user, provider):
    """The admin site and the API check the same permissions: granting one opens both."""
    api_client.force_authenticate(user)
    payload = {"name": "gpt-new", "provider": provider.pk, "upstream_name": "gpt"}
    assert api_client.post("/llm/models", payload, format="json").status_code == 403

    user.user_permissions.add(Permission.objects.get(codename="add_model", content_type__app_label="llm"))
    user = get_user_model().objects.get(pk=user.pk)  # a fresh permission cache
    api_client.force_authenticate(user)

    assert api_client.post("/llm/models", payload, format="json").status_code == 201
