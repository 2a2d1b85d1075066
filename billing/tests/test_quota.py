"""Monthly budgets cannot be overspent: reservations are atomic, and out of budget is a 429."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from billing import periods, services
from billing.errors import InsufficientQuota
from billing.models import ApiKeyQuota, QuotaCounter, UserQuota
from billing.money import parse_budget
from billing.tests.conftest import run_at_once


@pytest.fixture(autouse=True)
def _whole_reservations(settings) -> None:
    """These tests reason about calls that reserve all they may generate: allowances larger
    than any max_tokens here (the steps a reply grows by are test_reservation_steps')."""
    settings.RESERVE_OUTPUT_TOKENS = settings.RESERVE_STEP_TOKENS = 1_000_000


def admit(user, target, *, api_key=None, input_tokens=1000, max_output_tokens=2500):
    # 1000 * 2.50 / 1e6 + 2500 * 10.00 / 1e6 = 0.0275 at the test model's prices
    return services.admission_reserve(
        user=user,
        api_key=api_key,
        target=target,
        input_tokens=input_tokens,
        max_output_tokens=max_output_tokens,
    )


def spend(user, amount: str, *, api_key=None) -> None:
    QuotaCounter.objects.create(
        user=user, api_key=api_key, month=periods.month_start(periods.now()), used=Decimal(amount)
    )


def test_an_exhausted_budget_is_insufficient_quota(user, target):
    UserQuota.objects.create(user=user, monthly_budget=Decimal("1.00"))
    spend(user, "0.99")

    with pytest.raises(InsufficientQuota) as refused:
        admit(user, target)

    assert refused.value.status_code == 429
    assert refused.value.code == "insufficient_quota"


def test_the_default_budget_comes_from_the_setting(user, target, settings):
    settings.DEFAULT_MONTHLY_BUDGET = "0.05"
    admit(user, target)

    with pytest.raises(InsufficientQuota):
        admit(user, target)


def test_a_call_that_fits_exactly_is_admitted(user, target):
    UserQuota.objects.create(user=user, monthly_budget=Decimal("1.00"))
    spend(user, "0.9725")

    admit(user, target)

    row = QuotaCounter.objects.get(user=user)
    assert row.used + row.reserved == Decimal("1.00")


def test_a_budget_of_zero_admits_nothing(user, target):
    UserQuota.objects.create(user=user, monthly_budget=Decimal("0"))

    with pytest.raises(InsufficientQuota):
        admit(user, target)


@pytest.mark.django_db(transaction=True)
def test_50_simultaneous_calls_at_the_edge_of_the_budget_do_not_overspend_it(user, target):
    UserQuota.objects.create(user=user, monthly_budget=Decimal("1.00"), calls_per_minute=0)
    spend(user, "0.90")  # room for three reservations of 0.0275, not four

    results = run_at_once(lambda: admit(user, target), times=50)

    admitted = [result for result in results if isinstance(result, services.Admission)]
    refused = [result for result in results if isinstance(result, InsufficientQuota)]
    assert (len(admitted), len(refused)) == (3, 47)
    for admission in admitted:  # each generates all it may
        services.usage_record_create(
            admission=admission,
            target=target,
            input_tokens=1000,
            output_tokens=2500,
            estimated=False,
            cached=False,
            outcome="complete",
            latency_ms=1,
            ttft_ms=1,
        )
    row = QuotaCounter.objects.get(user=user)
    assert row.reserved == 0
    assert row.used == Decimal("0.9825") <= Decimal("1.00")


def test_an_api_key_with_a_budget_is_held_to_it_and_to_its_users(user, api_key, target):
    ApiKeyQuota.objects.create(api_key=api_key, monthly_budget=Decimal("0.05"))
    admit(user, target, api_key=api_key)

    with pytest.raises(InsufficientQuota, match="API key"):
        admit(user, target, api_key=api_key)
    admit(user, target)  # the user's own budget is far from spent


def test_a_refusal_by_the_keys_budget_reserves_nothing_on_the_users(user, api_key, target):
    ApiKeyQuota.objects.create(api_key=api_key, monthly_budget=Decimal("0.01"))

    with pytest.raises(InsufficientQuota):
        admit(user, target, api_key=api_key)

    assert not QuotaCounter.objects.filter(reserved__gt=0).exists()


def test_a_monthly_token_limit_is_enforced_like_the_budget(user, target):
    UserQuota.objects.create(user=user, monthly_tokens=5000)
    admit(user, target)  # 3500 tokens at most

    with pytest.raises(InsufficientQuota):
        admit(user, target)


def test_the_budget_resets_on_the_first_of_the_month(user, target, monkeypatch):
    UserQuota.objects.create(user=user, monthly_budget=Decimal("0.03"))
    monkeypatch.setattr(periods, "now", lambda: datetime(2031, 1, 31, 23, 59, tzinfo=UTC))
    admit(user, target)
    with pytest.raises(InsufficientQuota):
        admit(user, target)

    monkeypatch.setattr(periods, "now", lambda: datetime(2031, 2, 1, 0, 0, tzinfo=UTC))

    admit(user, target)


@pytest.mark.parametrize("raw", ["ten", "-1", "NaN", "Infinity", ""])
def test_a_bad_default_budget_fails_loudly_naming_the_setting(raw):
    with pytest.raises(ImproperlyConfigured, match="DEFAULT_MONTHLY_BUDGET"):
        parse_budget(raw)


@pytest.mark.django_db(transaction=True)
def test_a_budget_set_while_calls_run_holds_from_the_next_call(user, api_key, target):
    admit(user, target, api_key=api_key)  # the user's and the key's limits are now kept in memory
    admit(user, target, api_key=api_key)

    services.user_quota_set(user=user, monthly_budget=Decimal("0.06"))  # 2 x 0.0275 reserved so far
    with pytest.raises(InsufficientQuota, match="your monthly budget"):
        admit(user, target, api_key=api_key)

    services.user_quota_set(user=user, monthly_budget=Decimal("10"))
    services.api_key_quota_set(api_key=api_key, monthly_budget=Decimal("0.06"))
    with pytest.raises(InsufficientQuota, match="this API key's monthly budget"):
        admit(user, target, api_key=api_key)

    ApiKeyQuota.objects.filter(api_key=api_key).delete()
    admit(user, target, api_key=api_key)
