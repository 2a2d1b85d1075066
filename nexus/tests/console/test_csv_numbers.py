"""Every CSV export writes amounts as plain numbers a spreadsheet reads: 0, not 0E-10.

Costs are kept with ten decimal places; str() of such a zero is "0E-10", which spreadsheets
take for text. The exports: the usage records' admin action and `usage_report --csv`.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Role
from billing.money import ZERO, plain_amount, quantize
from billing.periods import month_start, now
from llm.models import Model
from nexus.tests.console.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (ZERO, "0"),
        (Decimal("0E-10"), "0"),
        (quantize(Decimal("0.0048")), "0.0048"),
        (quantize(Decimal("12.5")), "12.5"),
        (quantize(Decimal("1000")), "1000"),
        (Decimal("-0.0000000000"), "0"),
        (quantize(Decimal("0.0000000001")), "0.0000000001"),
    ],
)
def test_an_amount_is_written_as_a_plain_exact_number(amount, text):
    assert plain_amount(amount) == text
    assert Decimal(text) == amount


@pytest.fixture
def free_and_paid_calls(catalog, record_call):
    free = Model.objects.create(provider=catalog.provider, name="free-model", upstream_name="free")
    user = make_user("spreadsheet@example.com")
    record_call(user, free, input_tokens=10, output_tokens=20)
    record_call(user, catalog.primary, input_tokens=1200, output_tokens=300)  # 0.0048
    return user


def exported_rows(client, admin) -> list[dict[str, str]]:
    from billing.models import UsageRecord

    client.force_login(admin)
    ids = [str(pk) for pk in UsageRecord.objects.values_list("pk", flat=True)]
    response = client.post("/admin/billing/usagerecord/", {"action": "export_csv", "_selected_action": ids})
    assert response.status_code == 200
    return list(csv.DictReader(StringIO(b"".join(response.streaming_content).decode())))


def test_the_usage_records_export_writes_a_free_calls_cost_as_0(client, free_and_paid_calls):
    admin = make_user("exporter@example.com", role=Role.ADMIN)
    costs = {row["model_name"]: row["cost"] for row in exported_rows(client, admin)}
    assert costs == {"free-model": "0", "house-large": "0.0048"}


def test_the_monthly_report_writes_a_free_calls_cost_as_0(free_and_paid_calls):
    out = StringIO()
    call_command("usage_report", "--month", f"{month_start(now()):%Y-%m}", "--csv", stdout=out)
    rows = list(csv.DictReader(StringIO(out.getvalue())))
    costs = {row["model"]: row["cost"] for row in rows}
    assert costs == {"free-model": "0", "house-large": "0.0048"}
    assert "E-" not in out.getvalue()
