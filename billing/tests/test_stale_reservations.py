"""Budget held by a call whose process died is given back by release_stale_reservations."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing import periods, services
from billing.models import QuotaCounter, Reservation


def test_reservations_older_than_the_cutoff_are_released(user, target, monkeypatch):
    services.admission_reserve(user=user, api_key=None, target=target, input_tokens=10, max_output_tokens=10)
    later = periods.now() + timedelta(minutes=61)
    monkeypatch.setattr(periods, "now", lambda: later)
    fresh = services.admission_reserve(
        user=user, api_key=None, target=target, input_tokens=10, max_output_tokens=10
    )
    output = StringIO()

    call_command("release_stale_reservations", "--minutes", "60", stdout=output)

    assert "Released 1 " in output.getvalue()
    assert list(Reservation.objects.values_list("id", flat=True)) == [fresh.id]
    assert QuotaCounter.objects.get(user=user).reserved == fresh.amount


def test_a_released_call_that_settles_after_all_is_charged_once(user, target, monkeypatch):
    admission = services.admission_reserve(
        user=user, api_key=None, target=target, input_tokens=10, max_output_tokens=10
    )
    later = periods.now() + timedelta(hours=2)
    monkeypatch.setattr(periods, "now", lambda: later)
    services.reservations_release_stale(older_than=timedelta(hours=1))

    record = services.usage_record_create(
        admission=admission,
        target=target,
        input_tokens=10,
        output_tokens=10,
        estimated=True,
        cached=False,
        outcome="complete",
        latency_ms=5,
        ttft_ms=None,
    )

    row = QuotaCounter.objects.get(user=user)
    assert (row.used, row.reserved) == (record.cost, 0)


def test_a_cutoff_below_a_minute_is_refused(db):
    with pytest.raises(CommandError, match="--minutes"):
        call_command("release_stale_reservations", "--minutes", "0")
