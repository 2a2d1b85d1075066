"""GET /billing/quota: the caller's budget this month, or the API key's when called with it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import ApiKeyQuota, UserQuota

pytestmark = pytest.mark.django_db


def test_it_shows_limit_used_reserved_remaining_and_when_it_resets(api_client, user, call, settings):
    settings.DEFAULT_MONTHLY_BUDGET = "10.00"
    record = call(user, input_tokens=1000, output_tokens=100)  # 0.0035
    api_client.force_authenticate(user)

    response = api_client.get("/billing/quota")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "scope",
        "limit",
        "used",
        "reserved",
        "remaining",
        "period_start",
        "resets_at",
        "tokens",
    }
    assert body["scope"] == "user"
    assert Decimal(body["limit"]) == Decimal("10")
    assert Decimal(body["used"]) == record.cost
    assert Decimal(body["reserved"]) == 0
    assert Decimal(body["remaining"]) == Decimal("10") - record.cost
    assert isinstance(body["limit"], str)
    assert body["resets_at"].endswith(("Z", "+00:00"))
    assert body["resets_at"][8:19] == "01T00:00:00"
    assert body["tokens"] == {"limit": None, "used": 1100, "reserved": 0, "remaining": None}


def test_an_admins_override_is_the_limit(api_client, user):
    UserQuota.objects.create(user=user, monthly_budget=Decimal("2.5"), monthly_tokens=1000)
    api_client.force_authenticate(user)

    body = api_client.get("/billing/quota").json()

    assert Decimal(body["limit"]) == Decimal("2.5")
    assert body["tokens"]["limit"] == 1000


def test_with_an_api_key_that_has_a_budget_it_describes_the_key(api_client, user, api_key, call):
    ApiKeyQuota.objects.create(api_key=api_key, monthly_budget=Decimal("1.00"))
    record = call(user, api_key=api_key)
    call(user)  # without the key: not the key's spending
    api_client.force_authenticate(user, token=api_key)

    body = api_client.get("/billing/quota").json()

    assert body["scope"] == "key"
    assert Decimal(body["limit"]) == Decimal("1")
    assert Decimal(body["used"]) == record.cost
    assert Decimal(body["remaining"]) == Decimal("1") - record.cost


def test_with_an_api_key_without_a_budget_it_describes_the_user(api_client, user, api_key):
    api_client.force_authenticate(user, token=api_key)

    body = api_client.get("/billing/quota").json()

    assert body["scope"] == "user"


def test_remaining_is_what_the_user_can_still_spend(api_client, user, api_key, call):
    UserQuota.objects.create(user=user, monthly_budget=Decimal("0.02"))
    ApiKeyQuota.objects.create(api_key=api_key, monthly_budget=Decimal("5.00"))
    call(user, input_tokens=1000, output_tokens=500)  # 0.0075 of the user's 0.02
    api_client.force_authenticate(user, token=api_key)

    body = api_client.get("/billing/quota").json()

    assert Decimal(body["remaining"]) == Decimal("0.0125")


def test_it_needs_credentials(api_client):
    response = api_client.get("/billing/quota")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
