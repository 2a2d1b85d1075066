"""`manage.py usage_report --month YYYY-MM [--csv]`: a month's usage per user and model."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.models import DailyUsage
from nexus.tests.console.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def march():
    alice, bob = make_user("alice@example.com"), make_user("bob@example.com")

    def day(user, when, model, calls, failed, inp, out, cost):
        DailyUsage.objects.create(
            day=when,
            user=user,
            model_name=model,
            provider_name="openai",
            calls=calls,
            calls_failed=failed,
            input_tokens=inp,
            output_tokens=out,
            cost=Decimal(cost),
        )

    day(alice, date(2026, 3, 1), "gpt-a", 2, 0, 100, 200, "0.0100")
    day(alice, date(2026, 3, 31), "gpt-a", 1, 1, 50, 0, "0.0005")
    day(alice, date(2026, 3, 15), "gpt-b", 4, 0, 400, 400, "0.2000")
    day(bob, date(2026, 3, 2), "gpt-a", 3, 0, 300, 300, "0.0300")
    day(bob, date(2026, 4, 1), "gpt-a", 9, 0, 900, 900, "9.0000")  # April: not in the report
    day(bob, date(2026, 2, 28), "gpt-a", 9, 0, 900, 900, "9.0000")  # February neither


def report(*args: str) -> str:
    out = StringIO()
    call_command("usage_report", *args, stdout=out)
    return out.getvalue()


def test_the_csv_has_one_row_per_user_and_model_with_exact_figures(march):
    rows = list(csv.DictReader(StringIO(report("--month", "2026-03", "--csv"))))
    assert [(row["user"], row["model"]) for row in rows] == [
        ("alice@example.com", "gpt-a"),
        ("alice@example.com", "gpt-b"),
        ("bob@example.com", "gpt-a"),
    ]
    alice_a = rows[0]
    assert (alice_a["calls"], alice_a["failed"], alice_a["input_tokens"], alice_a["output_tokens"]) == (
        "3",
        "1",
        "150",
        "200",
    )
    assert Decimal(alice_a["cost"]) == Decimal("0.0105")


def test_the_table_ends_with_the_month_totals(march):
    output = report("--month", "2026-03")
    assert output.splitlines()[0] == "Usage in 2026-03 (UTC), by user and model"
    total = output.splitlines()[-1].split()
    assert total[0] == "total"
    assert total[1:3] == ["10", "1"]  # calls, failed
    assert total[-1] == "0.2405"


def test_a_month_without_calls_says_so(march):
    assert "No AI calls in this month." in report("--month", "2025-01")


@pytest.mark.parametrize("month", ["2026-13", "03-2026", "2026/03", "march"])
def test_an_unreadable_month_is_refused(month):
    with pytest.raises(CommandError, match="YYYY-MM"):
        report("--month", month)
