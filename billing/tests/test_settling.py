"""A call is charged once for what it generated: settled exactly once, released when unused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing import services
from billing.models import DailyUsage, QuotaCounter, Reservation, UsageRecord
from billing.tests.conftest import run_at_once


def counter(user) -> QuotaCounter:
    return QuotaCounter.objects.get(user=user, api_key__isnull=True)


def admit(user, target, *, api_key=None, input_tokens=1000, max_output_tokens=2000):
    return services.admission_reserve(
        user=user,
        api_key=api_key,
        target=target,
        input_tokens=input_tokens,
        max_output_tokens=max_output_tokens,
    )


def settle(admission, target, *, output_tokens=40, outcome="complete"):
    return services.usage_record_create(
        admission=admission,
        target=target,
        input_tokens=1000,
        output_tokens=output_tokens,
        estimated=False,
        cached=False,
        outcome=outcome,
        latency_ms=900,
        ttft_ms=120,
    )


def test_admission_reserves_the_most_the_call_can_cost(user, target):
    admission = admit(user, target, input_tokens=1000, max_output_tokens=2000)

    # 1000 * 2.50 / 1e6 + 2000 * 10.00 / 1e6
    assert admission.amount == Decimal("0.0225")
    assert counter(user).reserved == Decimal("0.0225")
    assert counter(user).used == 0


def test_settling_replaces_the_reservation_with_the_real_cost(user, target):
    admission = admit(user, target)

    record = settle(admission, target, output_tokens=40)

    assert record.cost == Decimal("0.0029")
    assert (counter(user).used, counter(user).reserved) == (Decimal("0.0029"), 0)
    assert not Reservation.objects.exists()


def test_settling_twice_charges_once(user, target):
    admission = admit(user, target)

    first = settle(admission, target, output_tokens=40)
    second = settle(admission, target, output_tokens=40)

    assert second.pk == first.pk
    assert UsageRecord.objects.count() == 1
    assert (counter(user).used, counter(user).reserved) == (Decimal("0.0029"), 0)
    assert DailyUsage.objects.get().calls == 1


def test_a_stopped_call_is_charged_for_the_tokens_it_generated(user, target):
    admission = admit(user, target, max_output_tokens=2000)

    record = settle(admission, target, output_tokens=7, outcome="stopped")

    assert record.outcome == "stopped"
    assert (
        record.cost == Decimal("1000") * Decimal("2.5") / 1_000_000 + Decimal("7") * Decimal("10") / 1_000_000
    )
    assert counter(user).used == record.cost


@pytest.mark.django_db(transaction=True)
def test_settling_from_two_places_at_once_charges_once(user, target):
    admission = admit(user, target)

    results = run_at_once(lambda: settle(admission, target, output_tokens=40), times=8)

    assert not [result for result in results if isinstance(result, Exception)]
    assert len({result.pk for result in results if isinstance(result, UsageRecord)}) == 1
    assert (counter(user).used, counter(user).reserved) == (Decimal("0.0029"), 0)


def test_releasing_gives_the_reservation_back(user, target):
    admission = admit(user, target)

    services.admission_release(admission=admission)
    services.admission_release(admission=admission)

    assert (counter(user).used, counter(user).reserved) == (0, 0)
    assert not UsageRecord.objects.exists()


def test_releasing_after_settling_changes_nothing(user, target):
    admission = admit(user, target)
    settle(admission, target, output_tokens=40)

    services.admission_release(admission=admission)

    assert (counter(user).used, counter(user).reserved) == (Decimal("0.0029"), 0)


def test_a_call_with_an_api_key_moves_the_keys_counter_too(user, api_key, target):
    admission = admit(user, target, api_key=api_key)
    settle(admission, target, output_tokens=40)

    key_counter = QuotaCounter.objects.get(api_key=api_key)
    assert (key_counter.used, key_counter.reserved) == (Decimal("0.0029"), 0)
    assert UsageRecord.objects.get().api_key == api_key


def test_a_key_deleted_during_the_call_leaves_the_record_and_the_users_charge(user, api_key, target):
    admission = admit(user, target, api_key=api_key)
    api_key.delete()

    record = settle(admission, target, output_tokens=40)

    assert record.api_key_id is None
    assert (counter(user).used, counter(user).reserved) == (Decimal("0.0029"), 0)


@pytest.mark.django_db(transaction=True)
def test_calls_settled_at_the_same_time_all_reach_the_daily_totals(user, target, django_user_model):
    people = [user] + [
        django_user_model.objects.create_user(f"user{number}@example.com", "correct horse battery")
        for number in range(7)
    ]
    admissions = iter([admit(person, target) for person in people for _ in range(2)])

    results = run_at_once(lambda: settle(next(admissions), target), times=len(people) * 2)

    assert not [result for result in results if isinstance(result, Exception)]
    assert sum(DailyUsage.objects.values_list("calls", flat=True)) == UsageRecord.objects.count() == 16
    assert DailyUsage.objects.count() == 8


def test_an_unknown_outcome_is_refused(user, target):
    admission = admit(user, target)

    with pytest.raises(ValueError, match="outcome"):
        settle(admission, target, outcome="streaming")
