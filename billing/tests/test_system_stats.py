"""GET /system/stats: everyone's usage for admins, agreeing with the ledger to the last digit."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db.models import Count, Sum

from billing import periods
from billing.models import UsageRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root@example.com", "correct horse battery")


@pytest.fixture
def traffic(user, api_key, call, make_target, django_user_model):
    cheap = make_target("cheap", input_price="0.10", output_price="0.40")
    bob = django_user_model.objects.create_user("bob@example.com", "correct horse battery")
    call(user, input_tokens=1200, output_tokens=345)
    call(user, api_key=api_key, input_tokens=10, output_tokens=0, outcome="failed")
    call(user, served=cheap, input_tokens=77, output_tokens=12, outcome="stopped", cached=True)
    call(bob, input_tokens=5000, output_tokens=4000)
    call(bob, served=cheap, input_tokens=1, output_tokens=1, outcome="failed")


def test_totals_per_day_per_model_and_top_users_agree_with_the_ledger(api_client, admin_user, traffic):
    api_client.force_authenticate(admin_user)

    response = api_client.get("/system/stats")

    assert response.status_code == 200
    body = response.json()
    ledger = UsageRecord.objects.aggregate(
        calls=Count("id"), input=Sum("input_tokens"), output=Sum("output_tokens"), cost=Sum("cost")
    )
    totals = body["totals"]
    assert totals["calls"] == ledger["calls"] == 5
    assert (totals["input_tokens"], totals["output_tokens"]) == (ledger["input"], ledger["output"])
    assert Decimal(totals["cost"]) == ledger["cost"]
    assert totals["active_users"] == 2
    assert totals["failed"] == 2
    assert totals["error_rate"] == 0.4

    today = body["days"][-1]
    assert today["day"] == body["to"]
    assert (today["calls"], Decimal(today["cost"]), today["active_users"]) == (5, ledger["cost"], 2)

    for row in body["models"]:
        records = UsageRecord.objects.filter(model_name=row["model"])
        assert row["calls"] == records.count()
        assert Decimal(row["cost"]) == records.aggregate(cost=Sum("cost"))["cost"]

    top = body["top_users"]
    assert [row["email"] for row in top] == ["bob@example.com", "ada@example.com"]
    bob_cost = UsageRecord.objects.filter(user__email="bob@example.com").aggregate(cost=Sum("cost"))["cost"]
    assert Decimal(top[0]["cost"]) == bob_cost


def test_days_without_calls_are_in_the_series_with_zeros(api_client, admin_user, traffic):
    api_client.force_authenticate(admin_user)
    today = periods.utc_day(periods.now())
    start = today - timedelta(days=6)

    body = api_client.get("/system/stats", {"from": start.isoformat(), "to": today.isoformat()}).json()

    assert len(body["days"]) == 7
    assert [day["calls"] for day in body["days"][:-1]] == [0] * 6
    assert body["days"][0]["error_rate"] == 0


def test_a_user_granted_the_permission_may_read_them(api_client, user, traffic):
    user.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    api_client.force_authenticate(user)

    assert api_client.get("/system/stats").status_code == 200


def test_other_users_are_refused(api_client, user):
    api_client.force_authenticate(user)

    response = api_client.get("/system/stats")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_it_needs_credentials(api_client):
    assert api_client.get("/system/stats").status_code == 401


def test_a_range_longer_than_a_year_is_400(api_client, admin_user):
    api_client.force_authenticate(admin_user)

    response = api_client.get("/system/stats", {"from": "2020-01-01", "to": "2024-01-01"})

    assert response.status_code == 400
    assert "from" in response.json()["error"]["fields"]
