"""GET /billing/usage: the caller's calls, tokens and cost per day, model or API key."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Sum

from billing.models import UsageRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(user, api_key, call, make_target, django_user_model):
    cheap = make_target("cheap", input_price="0.10", output_price="0.40")
    call(user, input_tokens=100, output_tokens=50)
    call(user, served=cheap, input_tokens=200, output_tokens=10, outcome="failed")
    call(user, api_key=api_key, input_tokens=300, output_tokens=30)
    stranger = django_user_model.objects.create_user("eve@example.com", "correct horse battery")
    call(stranger, input_tokens=9999, output_tokens=9999)


def totals(records) -> dict:
    sums = records.aggregate(input=Sum("input_tokens"), output=Sum("output_tokens"), cost=Sum("cost"))
    return {"calls": records.count(), **sums}


def test_by_day_it_sums_the_callers_ledger(api_client, user, history):
    api_client.force_authenticate(user)

    response = api_client.get("/billing/usage", {"group_by": "day"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"from", "to", "group_by", "results", "total"}
    [today] = body["results"]
    ledger = totals(UsageRecord.objects.filter(user=user))
    assert today["calls"] == ledger["calls"] == 3
    assert (today["input_tokens"], today["output_tokens"]) == (ledger["input"], ledger["output"])
    assert today["total_tokens"] == ledger["input"] + ledger["output"]
    assert Decimal(today["cost"]) == ledger["cost"]
    assert today["failed"] == 1
    assert today["day"] == body["to"]
    assert body["total"]["calls"] == 3
    assert Decimal(body["total"]["cost"]) == ledger["cost"]


def test_by_model_it_names_each_model_and_its_provider(api_client, user, history):
    api_client.force_authenticate(user)

    body = api_client.get("/billing/usage", {"group_by": "model"}).json()

    by_model = {row["model"]: row for row in body["results"]}
    assert set(by_model) == {"gpt-test", "cheap"}
    assert by_model["cheap"]["calls"] == 1
    assert by_model["cheap"]["provider"] == "openai-test"
    cost = UsageRecord.objects.filter(user=user, model_name="gpt-test").aggregate(cost=Sum("cost"))["cost"]
    assert Decimal(by_model["gpt-test"]["cost"]) == cost
    assert "day" not in by_model["cheap"]


def test_by_key_calls_without_a_key_are_grouped_under_null(api_client, user, api_key, history):
    api_client.force_authenticate(user)

    body = api_client.get("/billing/usage", {"group_by": "key"}).json()

    by_key = {row["key"]["id"] if row["key"] else None: row for row in body["results"]}
    assert by_key[None]["calls"] == 2
    assert by_key[api_key.pk]["calls"] == 1
    assert by_key[api_key.pk]["key"] == {"id": api_key.pk, "name": "script", "prefix": "nx-test"}


def test_with_an_api_key_only_that_keys_calls_count(api_client, user, api_key, history):
    api_client.force_authenticate(user, token=api_key)

    body = api_client.get("/billing/usage", {"group_by": "model"}).json()

    assert body["total"]["calls"] == 1
    assert body["total"]["input_tokens"] == 300


def test_a_range_without_calls_is_empty(api_client, user, history):
    api_client.force_authenticate(user)

    body = api_client.get("/billing/usage", {"from": "2001-01-01", "to": "2001-01-31"}).json()

    assert body["results"] == []
    assert body["total"]["calls"] == 0
    assert Decimal(body["total"]["cost"]) == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2024-02-30"}, "to"),
        ({"from": "2024-03-01T10:00:00"}, "from"),
        ({"group_by": "hour"}, "group_by"),
        ({"from": "2024-03-02", "to": "2024-03-01"}, "from"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(api_client, user, query, field):
    api_client.force_authenticate(user)

    response = api_client.get("/billing/usage", query)

    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error["fields"]
    assert error["type"] == "invalid_request_error"


def test_the_number_of_queries_does_not_grow_with_the_groups(
    api_client, user, api_key, history, django_assert_max_num_queries
):
    api_client.force_authenticate(user)

    for group_by in ("day", "model", "key"):
        with django_assert_max_num_queries(2):
            assert api_client.get("/billing/usage", {"group_by": group_by}).status_code == 200


def test_it_needs_credentials(api_client):
    assert api_client.get("/billing/usage").status_code == 401
