"""What a model can do (vision, tools, structured output, reasoning) and its drop_params policy:
seeded from the catalog, carried by its route at once, edited in the admin and the API."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from llm import catalog
from llm.models import CAPABILITY_FIELDS, Model, ModelFallback, Provider
from llm.seed import seed
from llm.selectors import route_get
from llm.tests.test_seed import CREDENTIALS

pytestmark = pytest.mark.django_db

ALL = frozenset({"vision", "tools", "structured_output", "reasoning"})
DEFAULTS = frozenset({"vision", "tools", "structured_output"})


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def user():
    return get_user_model().objects.create_user(email="user@example.com", password="a-long-password-1")


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_superuser(email="admin@example.com", password="a-long-password-1")


@pytest.fixture
def provider():
    return Provider.objects.create(name="openai", kind="openai")


def make_model(provider: Provider, name: str, **fields) -> Model:
    return Model.objects.create(provider=provider, name=name, upstream_name=name, **fields)


# --- Seeding ------------------------------------------------------------------------------


def test_seeded_models_take_their_capabilities_from_the_catalog(monkeypatch, settings):
    settings.SEED_DEMO_PROVIDER = True
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.setenv(variable, "sk-test")

    list(seed(demo=False))

    models = {model.name: model for model in Model.objects.all()}
    assert models["gpt-5.4"].capabilities == ALL
    assert models["claude-sonnet-5"].capabilities == ALL
    assert models["gemini-3.8-flash"].capabilities == ALL
    assert models["deepseek-v4-pro"].capabilities == {"tools", "structured_output", "reasoning"}
    assert models["demo"].capabilities == frozenset()
    for name, model in models.items():
        entry = catalog.DEMO if name == "demo" else catalog.find(model.upstream_name)
        assert entry is not None, name
        assert model.capabilities == entry.capabilities, name
        assert model.drop_params, name


def test_an_azure_deployment_takes_its_models_capabilities_and_unknown_models_the_defaults(
    monkeypatch, settings
):
    settings.SEED_DEMO_PROVIDER = False
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-key")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://mine.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENTS", "chat=gpt-5.4-mini,thinker=deepseek-v4-flash,custom")
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("OPENAI_COMPATIBLE_MODELS", "llama3.3")

    list(seed(demo=False))

    capabilities = {model.name: model.capabilities for model in Model.objects.all()}
    assert capabilities == {
        "azure/chat": ALL,
        "azure/thinker": {"tools", "structured_output", "reasoning"},
        "azure/custom": DEFAULTS,
        "llama3.3": DEFAULTS,
    }


# --- Existing rows (the data migration) ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_sets_existing_models_from_the_catalog_and_demo_models_to_none():
    executor = MigrationExecutor(connection)
    # From before the capabilities to the newest schema (which the Model below reads), through 0004.
    before, after = [("llm", "0002_base_url_http_schemes")], executor.loader.graph.leaf_nodes("llm")
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        OldProvider, OldModel = apps.get_model("llm", "Provider"), apps.get_model("llm", "Model")
        openai = OldProvider.objects.create(name="openai", kind="openai")
        deepseek = OldProvider.objects.create(name="deepseek", kind="deepseek")
        demo = OldProvider.objects.create(name="demo", kind="demo")
        OldModel.objects.create(provider=openai, name="gpt", upstream_name="gpt-5.4")
        OldModel.objects.create(provider=deepseek, name="ds", upstream_name="deepseek-v4-flash")
        OldModel.objects.create(provider=openai, name="mine", upstream_name="my-fine-tune")
        OldModel.objects.create(provider=demo, name="demo", upstream_name="demo")
        OldModel.objects.create(provider=demo, name="demo-gpt", upstream_name="gpt-5.4")
    finally:
        executor = MigrationExecutor(connection)  # a fresh graph: the old one has 0003 unapplied
        executor.migrate(after)

    capabilities = {model.name: model.capabilities for model in Model.objects.all()}
    assert capabilities == {
        "gpt": ALL,
        "ds": {"tools", "structured_output", "reasoning"},
        "mine": DEFAULTS,
        "demo": frozenset(),
        "demo-gpt": frozenset(),
    }
    assert all(Model.objects.values_list("drop_params", flat=True))


# --- Routes ------------------------------------------------------------------------------------


def test_the_route_carries_each_targets_capabilities_and_drop_params(provider):
    main = make_model(provider, "main", supports_vision=False, supports_reasoning=True, drop_params=False)
    ModelFallback.objects.create(model=main, fallback=make_model(provider, "backup"))

    route = route_get(name="main")

    assert route.primary.capabilities == {"tools", "structured_output", "reasoning"}
    assert route.primary.drop_params is False
    assert route.fallbacks[0].capabilities == DEFAULTS
    assert route.fallbacks[0].drop_params is True


def model_form(model: Model, **changes: str) -> dict[str, str]:
    """The admin's change form of `model` as a browser posts it: an unticked box is left out."""
    data = {
        "name": model.name,
        "provider": str(model.provider_id),
        "upstream_name": model.upstream_name,
        "display_name": model.display_name,
        "input_price_per_million": str(model.input_price_per_million),
        "output_price_per_million": str(model.output_price_per_million),
        "context_window": str(model.context_window),
        "max_output_tokens": str(model.max_output_tokens),
        "default_params": "{}",
        "kind": model.kind,
        "fallback_entries-TOTAL_FORMS": "0",
        "fallback_entries-INITIAL_FORMS": "0",
        "fallback_entries-MIN_NUM_FORMS": "0",
        "fallback_entries-MAX_NUM_FORMS": "1000",
        "aliases-TOTAL_FORMS": "0",
        "aliases-INITIAL_FORMS": "0",
        "aliases-MIN_NUM_FORMS": "0",
        "aliases-MAX_NUM_FORMS": "1000",
    }
    boxes = ("enabled", "cache_enabled", "drop_params", *CAPABILITY_FIELDS.values())
    for box in boxes:
        if getattr(model, box):
            data[box] = "on"
    data.update(changes)
    return {name: value for name, value in data.items() if value != ""}


@pytest.mark.django_db(transaction=True)
def test_a_flag_changed_in_the_admin_reaches_the_next_route_at_once(client, django_assert_num_queries):
    provider = Provider.objects.create(name="p", kind="openai", base_url="https://api.example.com/v1")
    model = make_model(provider, "gpt")
    client.force_login(
        get_user_model().objects.create_superuser(email="admin@example.com", password="a-long-password-1")
    )
    assert "vision" in route_get(name="gpt").primary.capabilities
    with django_assert_num_queries(0):
        route_get(name="gpt")  # kept in this process from now on

    response = client.post(
        f"/admin/llm/model/{model.pk}/change/",
        model_form(model, supports_vision="", supports_reasoning="on", drop_params=""),
    )

    assert response.status_code == 302
    target = route_get(name="gpt").primary
    assert target.capabilities == {"tools", "structured_output", "reasoning"}
    assert target.drop_params is False


@pytest.mark.django_db(transaction=True)
def test_a_flag_changed_through_the_api_reaches_the_next_route_at_once(api_client):
    provider = Provider.objects.create(name="p", kind="openai", base_url="https://api.example.com/v1")
    model = make_model(provider, "gpt")
    api_client.force_authenticate(
        get_user_model().objects.create_superuser(email="admin@example.com", password="a-long-password-1")
    )
    assert route_get(name="gpt").primary.drop_params is True

    response = api_client.patch(
        f"/llm/models/{model.pk}", {"supports_tools": False, "drop_params": False}, format="json"
    )

    assert response.status_code == 200
    target = route_get(name="gpt").primary
    assert "tools" not in target.capabilities
    assert target.drop_params is False


# --- The admin ---------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_model_page_has_a_capabilities_fieldset_with_the_flags_and_drop_params(admin_client, provider):
    model = make_model(provider, "gpt")

    page = admin_client.get(f"/admin/llm/model/{model.pk}/change/").content.decode()

    assert "<h2" in page and "Capabilities" in page
    for field in (
        "supports_vision",
        "supports_tools",
        "supports_structured_output",
        "supports_reasoning",
        "drop_params",
    ):
        assert f'name="{field}"' in page, field
    assert "X-Nexus-Dropped-Params" in page  # drop_params says what it does
    assert "gets a 400 naming the capability" in page


def test_the_admin_saves_the_flags(admin_client, provider):
    model = make_model(provider, "gpt")

    response = admin_client.post(
        f"/admin/llm/model/{model.pk}/change/",
        model_form(model, supports_structured_output="", supports_reasoning="on"),
    )

    assert response.status_code == 302
    model.refresh_from_db()
    assert model.capabilities == {"vision", "tools", "reasoning"}
    assert model.drop_params


def test_the_model_list_shows_capabilities_and_filters_by_them(admin_client, provider):
    make_model(provider, "sees", supports_reasoning=True)
    make_model(provider, "blind", supports_vision=False, supports_structured_output=False)

    page = admin_client.get("/admin/llm/model/").content.decode()
    blind_only = admin_client.get("/admin/llm/model/?supports_vision__exact=0").content.decode()

    assert "vision, tools, structured output, reasoning" in page
    assert '<td class="field-capability_list">tools</td>' in page
    assert ">blind<" in blind_only and ">sees<" not in blind_only


# --- The API -----------------------------------------------------------------------------------


def test_everyone_who_lists_models_sees_their_capabilities_in_a_fixed_order(api_client, user, provider):
    make_model(provider, "everything", supports_reasoning=True)
    make_model(
        provider,
        "text-only",
        supports_vision=False,
        supports_tools=False,
        supports_structured_output=False,
    )
    api_client.force_authenticate(user)

    results = api_client.get("/llm/models").json()["results"]

    assert {model["id"]: model["capabilities"] for model in results} == {
        "everything": ["vision", "tools", "structured_output", "reasoning"],
        "text-only": [],
    }


def test_an_admin_adds_a_model_with_its_flags_and_the_rest_take_the_defaults(
    api_client, admin_user, provider
):
    api_client.force_authenticate(admin_user)

    response = api_client.post(
        "/llm/models",
        {"name": "local", "provider": provider.pk, "upstream_name": "llama3.3", "supports_tools": False},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["capabilities"] == ["vision", "structured_output"]
    assert (body["supports_tools"], body["supports_reasoning"], body["drop_params"]) == (False, False, True)
    assert Model.objects.get(name="local").capabilities == {"vision", "structured_output"}


def test_an_admin_changes_the_flags_and_drop_params(api_client, admin_user, provider):
    model = make_model(provider, "gpt")
    api_client.force_authenticate(admin_user)

    response = api_client.patch(
        f"/llm/models/{model.pk}",
        {"supports_vision": False, "supports_reasoning": True, "drop_params": False},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["capabilities"] == ["tools", "structured_output", "reasoning"]
    assert response.json()["drop_params"] is False
    assert api_client.get(f"/llm/models/{model.pk}").json()["supports_vision"] is False
    model.refresh_from_db()
    assert model.capabilities == {"tools", "structured_output", "reasoning"}
    assert model.drop_params is False


def test_a_user_cannot_change_the_flags(api_client, user, provider):
    model = make_model(provider, "gpt")
    api_client.force_authenticate(user)

    response = api_client.patch(
        f"/llm/models/{model.pk}", {"supports_vision": False, "drop_params": False}, format="json"
    )

    assert response.status_code == 403
    model.refresh_from_db()
    assert model.supports_vision and model.drop_params


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"supports_vision": "maybe"}, "supports_vision"),
        ({"supports_tools": None}, "supports_tools"),
        ({"supports_structured_output": [True]}, "supports_structured_output"),
        ({"supports_reasoning": 2}, "supports_reasoning"),
        ({"drop_params": "sometimes"}, "drop_params"),
    ],
)
def test_bad_flag_values_are_refused_with_the_field_named(api_client, admin_user, provider, change, field):
    model = make_model(provider, "gpt")
    api_client.force_authenticate(admin_user)

    response = api_client.patch(f"/llm/models/{model.pk}", change, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    model.refresh_from_db()
    assert model.capabilities == DEFAULTS and model.drop_params
