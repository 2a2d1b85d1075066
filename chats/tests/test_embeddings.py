"""/v1/embeddings, driven by the official `openai` SDK against a live server and the fake upstream."""

from __future__ import annotations

import csv
import math
from decimal import Decimal
from io import StringIO

import httpx
import openai
import pytest
from django.core.management import call_command

from accounts.models import User
from accounts.services import api_key_create
from billing.models import QuotaCounter, Reservation, UsageRecord
from billing.services import api_key_quota_set
from fake_upstream.embeddings_wire import vector as fake_vector
from llm.models import Model, ModelAlias
from llm.providers.demo import EMBEDDING_DIMENSIONS, vector_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

# Model name -> (provider kind, what the fake upstream is asked for).
EMBEDDERS = {
    "embed-openai": ("openai", "text-embedding-3-small"),
    "embed-azure": ("azure_openai", "embeddings-deployment"),
    "embed-gemini": ("gemini", "gemini-embedding-001"),
    "embed-demo": ("demo", "demo-embedding"),
}
PRICE = Decimal("0.02")


def embedding_model(upstream, provider_kind: str, name: str, upstream_name: str) -> Model:
    model = upstream.make_model(
        kind=provider_kind, name=name, upstream_name=upstream_name, input_price_per_million=PRICE
    )
    model.kind = "embedding"
    model.save()
    return model


@pytest.fixture
def gateway(module_server, chat):
    """A live server, an API key of the chat user, and an embedding model of each provider kind."""
    for name, (provider_kind, upstream_name) in EMBEDDERS.items():
        embedding_model(chat.upstream, provider_kind, name, upstream_name)
    chat.key, chat.secret = api_key_create(user=chat.user, name="rag")
    chat.url = module_server.url
    chat.client = openai.OpenAI(
        base_url=f"{module_server.url}/v1", api_key=chat.secret, max_retries=0, timeout=10
    )
    return chat


def embedding_calls(upstream) -> list[dict]:
    return [request for request in upstream.requests() if "mbed" in request["path"]]


def close_to(actual, expected) -> bool:
    # The SDK's default base64 is float32: seven digits or so survive the trip.
    return len(actual) == len(expected) and all(
        math.isclose(a, e, abs_tol=1e-6) for a, e in zip(actual, expected, strict=True)
    )


def expected_vector(model: str, text: str, dimensions: int) -> list[float]:
    if model == "embed-demo":
        return list(vector_for(text, dimensions))
    return fake_vector(text, dimensions)


# --- the four provider kinds -------------------------------------------------------------------


@pytest.mark.parametrize("model", list(EMBEDDERS))
def test_the_sdks_default_base64_brings_each_providers_vectors(gateway, model):
    response = gateway.client.embeddings.create(model=model, input="The quick brown fox")

    [item] = response.data
    dimensions = EMBEDDING_DIMENSIONS if model == "embed-demo" else len(item.embedding)
    assert dimensions in (256, 1536, 3072)
    assert close_to(item.embedding, expected_vector(model, "The quick brown fox", dimensions))
    assert math.isclose(sum(value * value for value in item.embedding), 1.0, rel_tol=1e-4)
    assert response.model == model
    assert response.usage.prompt_tokens == response.usage.total_tokens > 0


@pytest.mark.parametrize("model", list(EMBEDDERS))
def test_floats_of_the_dimensions_asked_come_in_the_inputs_order(gateway, model):
    texts = ["first text", "the second one", "third"]

    response = gateway.client.embeddings.create(
        model=model, input=texts, dimensions=8, encoding_format="float"
    )

    assert [item.index for item in response.data] == [0, 1, 2]
    for item, text in zip(response.data, texts, strict=True):
        assert item.embedding == pytest.approx(expected_vector(model, text, 8), abs=1e-7)


def test_each_wire_format_is_asked_for_floats_of_those_dimensions(gateway):
    for model in ("embed-openai", "embed-azure", "embed-gemini"):
        gateway.client.embeddings.create(model=model, input=["a b", "c"], dimensions=8, user="end-user-7")

    openai_call, azure_call, gemini_call = embedding_calls(gateway.upstream)
    assert openai_call["path"] == "/v1/embeddings"
    assert openai_call["body"] == {
        "model": "text-embedding-3-small",
        "input": ["a b", "c"],
        "user": "end-user-7",
        "dimensions": 8,
        "encoding_format": "float",
    }
    assert azure_call["path"] == "/openai/deployments/embeddings-deployment/embeddings"
    assert azure_call["query"]["api-version"] == gateway.upstream.api_version
    assert azure_call["body"]["encoding_format"] == "float"
    assert gemini_call["path"].endswith("/models/gemini-embedding-001:batchEmbedContents")
    requests = gemini_call["body"]["requests"]
    assert [request["content"]["parts"][0]["text"] for request in requests] == ["a b", "c"]
    assert {request["outputDimensionality"] for request in requests} == {8}


def test_token_arrays_go_to_openai_as_they_are(gateway):
    response = gateway.client.embeddings.create(model="embed-openai", input=[[1, 2, 3], [4, 5]])

    assert len(response.data) == 2
    assert embedding_calls(gateway.upstream)[0]["body"]["input"] == [[1, 2, 3], [4, 5]]
    assert response.usage.prompt_tokens == 5  # the fake counts a token per id


def test_token_arrays_are_refused_for_a_model_that_embeds_text_only(gateway):
    with pytest.raises(openai.BadRequestError) as error:
        gateway.client.embeddings.create(model="embed-gemini", input=[[1, 2, 3]])

    assert error.value.code == "model_not_capable"
    assert error.value.param == "input"
    assert embedding_calls(gateway.upstream) == []


# --- the ledger and the budget -----------------------------------------------------------------


def test_the_call_is_recorded_as_an_embedding_with_the_providers_tokens_and_charged(gateway):
    response = gateway.client.embeddings.create(model="embed-openai", input=["one two three", "four five"])

    record = UsageRecord.objects.get()
    assert (record.kind, record.model_name, record.api_key_id) == (
        "embedding",
        "embed-openai",
        gateway.key.pk,
    )
    assert (record.input_tokens, record.output_tokens) == (5, 0) == (response.usage.prompt_tokens, 0)
    assert not record.tokens_estimated
    assert record.cost == PRICE * 5 / 1_000_000
    assert record.outcome == "complete"
    counter = QuotaCounter.objects.get(api_key_id__isnull=True)
    assert (counter.used, counter.reserved, counter.tokens_used) == (record.cost, 0, 5)
    assert not Reservation.objects.exists()


def test_the_quota_endpoint_counts_the_call(gateway):
    gateway.client.embeddings.create(model="embed-openai", input="one two three four")

    quota = httpx.get(f"{gateway.url}/billing/quota", headers={"Authorization": f"Bearer {gateway.secret}"})

    assert Decimal(quota.json()["used"]) == PRICE * 4 / 1_000_000
    assert quota.json()["tokens"]["used"] == 4


def test_the_demo_model_is_charged_for_its_estimated_tokens(gateway):
    gateway.client.embeddings.create(model="embed-demo", input="offline vectors")

    record = UsageRecord.objects.get()
    assert record.tokens_estimated and record.input_tokens == 2
    assert embedding_calls(gateway.upstream) == []


def test_a_key_over_budget_gets_insufficient_quota_in_openais_shape(gateway):
    api_key_quota_set(api_key=gateway.key, monthly_budget=Decimal("0"))

    with pytest.raises(openai.RateLimitError) as error:
        gateway.client.embeddings.create(model="embed-openai", input="hello")

    assert error.value.status_code == 429
    assert error.value.code == "insufficient_quota"
    assert error.value.type == "rate_limit_error"
    assert embedding_calls(gateway.upstream) == []
    assert not UsageRecord.objects.exists()


def test_a_call_the_provider_refused_is_not_charged(gateway):
    gateway.upstream.configure(error_status=400, error_message="This model does not take dimensions.")

    with pytest.raises(openai.BadRequestError) as error:
        gateway.client.embeddings.create(model="embed-openai", input="hello", dimensions=3)

    assert error.value.code == "upstream_bad_request"
    assert not UsageRecord.objects.exists()
    assert not Reservation.objects.exists()
    assert QuotaCounter.objects.get(api_key_id__isnull=True).reserved == 0


def test_a_provider_failure_is_retried_before_the_client_hears_of_it(gateway):
    gateway.upstream.configure(error_status=503, fail_times=1)

    response = gateway.client.embeddings.create(model="embed-gemini", input="hello there")

    assert len(response.data) == 1
    assert len(embedding_calls(gateway.upstream)) == 2
    assert UsageRecord.objects.get().input_tokens == 2


def test_an_unreachable_provider_is_a_502_in_openais_shape(gateway):
    gateway.upstream.configure(error_status=503)

    with pytest.raises(openai.InternalServerError) as error:
        gateway.client.embeddings.create(model="embed-azure", input="hello")

    assert error.value.status_code == 502
    assert error.value.code == "upstream_unavailable"


# --- kinds, aliases and bad input ----------------------------------------------------------


def test_a_chat_model_is_refused_on_the_embeddings_endpoint(gateway):
    with pytest.raises(openai.BadRequestError) as error:
        gateway.client.embeddings.create(model="gpt-test", input="hello")

    assert error.value.code == "model_not_capable"
    assert error.value.param == "model"
    assert "/v1/chat/completions" in error.value.message


def test_an_embedding_model_is_refused_on_chat_completions(gateway):
    with pytest.raises(openai.BadRequestError) as error:
        gateway.client.chat.completions.create(
            model="embed-openai", messages=[{"role": "user", "content": "hi"}]
        )

    assert error.value.code == "model_not_capable"
    assert "embedding model" in error.value.message and "/v1/embeddings" in error.value.message
    assert gateway.upstream.requests() == []


def test_an_unknown_model_is_not_found(gateway):
    with pytest.raises(openai.NotFoundError) as error:
        gateway.client.embeddings.create(model="no-such-embedder", input="hello")

    assert error.value.code == "model_not_found"


def test_an_alias_is_served_by_its_model_on_chat_completions_and_listed(gateway):
    ModelAlias.objects.create(name="gpt-4o-mini", model=gateway.model)
    ModelAlias.objects.create(name="text-embedding-ada-002", model=Model.objects.get(name="embed-openai"))
    gateway.upstream.configure(reply="Served by an alias")

    completion = gateway.client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    vectors = gateway.client.embeddings.create(model="text-embedding-ada-002", input="hi")

    assert completion.choices[0].message.content == "Served by an alias"
    assert completion.model == "gpt-4o-mini"
    assert vectors.model == "text-embedding-ada-002"
    assert [call["model"] for call in gateway.upstream.requests()] == ["gpt-test", "text-embedding-3-small"]
    assert list(UsageRecord.objects.order_by("id").values_list("model_name", "kind")) == [
        ("gpt-test", "chat"),
        ("embed-openai", "embedding"),
    ]
    listed = [model.id for model in gateway.client.models.list()]
    assert {"gpt-4o-mini", "text-embedding-ada-002", "gpt-test", *EMBEDDERS} <= set(listed)
    assert listed == sorted(listed)
    alias = gateway.client.models.retrieve("gpt-4o-mini")
    assert (alias.id, alias.owned_by) == ("gpt-4o-mini", gateway.model.provider.name)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "embed-openai"}, "input"),
        ({"model": "embed-openai", "input": ""}, "input"),
        ({"model": "embed-openai", "input": []}, "input"),
        ({"model": "embed-openai", "input": ["fine", ""]}, "input[1]"),
        ({"model": "embed-openai", "input": ["text", 7]}, "input[1]"),
        ({"model": "embed-openai", "input": [[1, 2], "text"]}, "input[1]"),
        ({"model": "embed-openai", "input": [[]]}, "input[0]"),
        ({"model": "embed-openai", "input": [[1, -2]]}, "input[0][1]"),
        ({"model": "embed-openai", "input": [True]}, "input[0]"),
        ({"model": "embed-openai", "input": {"text": "hi"}}, "input"),
        ({"model": "embed-openai", "input": ["x"] * 2049}, "input"),
        ({"model": "embed-openai", "input": "hi", "dimensions": 0}, "dimensions"),
        ({"model": "embed-openai", "input": "hi", "dimensions": "8"}, "dimensions"),
        ({"model": "embed-openai", "input": "hi", "encoding_format": "hex"}, "encoding_format"),
        ({"model": "embed-openai", "input": "hi", "user": 7}, "user"),
        ({"model": "embed-openai", "input": "hi", "mystery": 1}, "mystery"),
        ({"input": "hi"}, "model"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(gateway, body, param):
    response = httpx.post(
        f"{gateway.url}/v1/embeddings", json=body, headers={"Authorization": f"Bearer {gateway.secret}"}
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]
    assert embedding_calls(gateway.upstream) == []


def test_2048_inputs_are_taken(gateway):
    response = gateway.client.embeddings.create(model="embed-demo", input=[f"text {n}" for n in range(2048)])

    assert len(response.data) == 2048


def test_it_needs_a_key(gateway):
    response = httpx.post(f"{gateway.url}/v1/embeddings", json={"model": "embed-openai", "input": "hi"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_the_call_shows_its_kind_in_usage_the_admin_the_csv_and_the_report(gateway, client):
    gateway.client.embeddings.create(model="embed-openai", input="one two")
    gateway.client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    key = {"Authorization": f"Bearer {gateway.secret}"}

    usage = httpx.get(f"{gateway.url}/billing/usage", params={"group_by": "model"}, headers=key).json()
    client.force_login(User.objects.create_superuser("admin@example.com", "correct horse battery staple"))
    listing = client.get("/admin/billing/usagerecord/", {"kind": "embedding"}).content.decode()
    ids = [str(pk) for pk in UsageRecord.objects.values_list("pk", flat=True)]
    export = client.post("/admin/billing/usagerecord/", {"action": "export_csv", "_selected_action": ids})
    report = StringIO()
    call_command(
        "usage_report",
        "--month",
        f"{UsageRecord.objects.get(kind='embedding').created_at:%Y-%m}",
        "--csv",
        stdout=report,
    )

    assert {row["model"]: row["kind"] for row in usage["results"]} == {
        "embed-openai": "embedding",
        "gpt-test": "chat",
    }
    assert "Totals of the 1 selected records" in listing and "column-kind" in listing
    rows = list(csv.DictReader(StringIO(b"".join(export.streaming_content).decode())))
    assert sorted((row["model_name"], row["kind"]) for row in rows) == [
        ("embed-openai", "embedding"),
        ("gpt-test", "chat"),
    ]
    reported = {row["model"]: row["kind"] for row in csv.DictReader(StringIO(report.getvalue()))}
    assert reported == {"embed-openai": "embedding", "gpt-test": "chat"}
