"""Reservations sized to what a call will likely cost, grown as its reply streams: no call
the budget can pay is refused, and none can spend past its budget by more than a step."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing import periods, services
from billing.errors import InsufficientQuota
from billing.models import QuotaCounter, Reservation, UserQuota
from billing.tests.conftest import run_at_once

# The test model: 2.50 per million input tokens, 10.00 per million output tokens.


@pytest.fixture(autouse=True)
def _steps(settings) -> None:
    settings.RESERVE_OUTPUT_TOKENS = 4000
    settings.RESERVE_STEP_TOKENS = 1000


def admit(user, target, *, max_output_tokens=128_000):
    return services.admission_reserve(
        user=user, api_key=None, target=target, input_tokens=1000, max_output_tokens=max_output_tokens
    )


def reserved(user) -> Decimal:
    return QuotaCounter.objects.get(
        user=user, api_key=None, month=periods.month_start(periods.now())
    ).reserved


def test_a_call_without_max_tokens_reserves_an_allowance_not_the_models_maximum(user, target):
    admission = admit(user, target)
    # 1000 input + 4000 output, not 128,000 output (1.2825)
    assert admission.amount == Decimal("0.0425") == reserved(user)
    assert (admission.output_tokens, admission.max_output_tokens) == (4000, 128_000)


def test_a_small_max_tokens_is_all_that_is_reserved(user, target):
    admission = admit(user, target, max_output_tokens=100)
    assert admission.output_tokens == 100
    assert admission.amount == Decimal("0.0035")


@pytest.mark.django_db(transaction=True)
def test_six_simultaneous_chats_of_a_new_user_all_start(user, target):
    UserQuota.objects.create(user=user, monthly_budget=Decimal("0.30"), calls_per_minute=0)
    results = run_at_once(lambda: admit(user, target), times=6)
    assert all(isinstance(result, services.Admission) for result in results), results


def test_a_budget_that_cannot_pay_the_allowance_still_starts_a_call_it_can_pay_a_step_of(user, target):
    UserQuota.objects.create(user=user, monthly_budget=Decimal("0.02"))
    admission = admit(user, target)
    assert admission.output_tokens == 1000  # one step: 0.0125
    with pytest.raises(InsufficientQuota) as refused:
        admit(user, target)
    # It says what the call needed and what is left.
    assert "0.0125" in refused.value.message and "0.0075 is left" in refused.value.message


def test_a_reservation_grows_by_steps_up_to_the_calls_limit(user, target):
    admission = admit(user, target, max_output_tokens=5500)
    grown = services.admission_extend(admission=admission, target=target, output_tokens=1000)
    assert grown is not None and grown.output_tokens == 5000
    assert Reservation.objects.get(pk=admission.id).tokens == 6000
    last = services.admission_extend(admission=grown, target=target, output_tokens=1000)
    assert last is not None and last.output_tokens == 5500  # never past max_tokens
    assert services.admission_extend(admission=last, target=target, output_tokens=1000) is None
    assert reserved(user) == Decimal("0.0575")  # 1000 in, 5500 out


def test_a_step_the_budget_cannot_pay_is_refused_and_reserves_nothing(user, target):
    UserQuota.objects.create(user=user, monthly_budget=Decimal("0.05"))
    admission = admit(user, target)  # 0.0425
    assert services.admission_extend(admission=admission, target=target, output_tokens=1000) is None
    assert reserved(user) == Decimal("0.0425")


def test_settling_releases_all_a_grown_reservation_held(user, target):
    admission = admit(user, target)
    services.admission_extend(admission=admission, target=target, output_tokens=1000)
    services.usage_record_create(
        admission=admission,  # the first snapshot: the row knows what it grew to
        target=target,
        input_tokens=1000,
        output_tokens=4500,
        estimated=False,
        cached=False,
        outcome="complete",
        latency_ms=1,
        ttft_ms=1,
    )
    row = QuotaCounter.objects.get(user=user)
    assert (row.reserved, row.used) == (0, Decimal("0.0475"))


def test_a_call_refused_before_its_first_token_costs_nothing(user, target):
    admission = admit(user, target)
    record = services.usage_record_create(
        admission=admission,
        target=target,
        input_tokens=1000,
        output_tokens=0,
        estimated=True,
        cached=False,
        outcome="failed",
        latency_ms=1,
        ttft_ms=None,
        charged=False,
    )
    assert (record.cost, record.input_tokens) == (0, 1000)
    row = QuotaCounter.objects.get(user=user)
    assert (row.reserved, row.used) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_50_simultaneous_growing_calls_overspend_by_at_most_a_step_each(user, target):
    UserQuota.objects.create(user=user, monthly_budget=Decimal("0.20"), calls_per_minute=0)

    def call() -> Decimal:
        admission = admit(user, target, max_output_tokens=20_000)
        generated = admission.output_tokens
        while grown := services.admission_extend(admission=admission, target=target, output_tokens=1000):
            admission, generated = grown, grown.output_tokens
        record = services.usage_record_create(
            admission=admission,
            target=target,
            input_tokens=1000,
            output_tokens=generated,
            estimated=False,
            cached=False,
            outcome="complete",
            latency_ms=1,
            ttft_ms=1,
        )
        return record.cost

    results = run_at_once(call, times=50)
    row = QuotaCounter.objects.get(user=user)
    assert row.reserved == 0
    # Every call stayed within what it reserved, so the ledger never passes the budget.
    assert row.used == sum(result for result in results if isinstance(result, Decimal)) <= Decimal("0.20")
