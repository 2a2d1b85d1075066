"""A call costs its tokens times the prices of the model that served it, at that time."""

from __future__ import annotations

from decimal import Decimal

from billing.models import UsageRecord
from llm.models import Model


def test_cost_is_input_tokens_times_input_price_plus_output_tokens_times_output_price(user, call):
    record = call(user, input_tokens=1234, output_tokens=567)

    # 2.50 and 10.00 per million tokens
    assert (
        record.cost
        == Decimal("1234") * Decimal("2.50") / 1_000_000 + Decimal("567") * Decimal("10.00") / 1_000_000
    )
    assert record.cost == Decimal("0.008755")
    assert (record.input_tokens, record.output_tokens) == (1234, 567)


def test_a_fallback_is_charged_at_its_own_prices(user, call, make_target):
    fallback = make_target("cheap-fallback", input_price="0.15", output_price="0.60")

    record = call(user, served=fallback, input_tokens=1_000_000, output_tokens=2_000_000)

    assert record.cost == Decimal("1.35")
    assert (record.model_name, record.provider_name) == ("cheap-fallback", "openai-test")


def test_the_price_of_the_call_stays_when_the_price_list_changes(user, call, target):
    record = call(user, input_tokens=1_000_000, output_tokens=0)
    Model.objects.filter(pk=target.id).update(input_price_per_million=Decimal("99"))

    record.refresh_from_db()
    assert record.cost == Decimal("2.5")
    assert record.input_price_per_million == Decimal("2.5")


def test_history_survives_the_deletion_of_the_model(user, call, target):
    record = call(user)
    Model.objects.filter(pk=target.id).delete()

    record.refresh_from_db()
    assert record.model_id is None
    assert record.model_name == "gpt-test"
    assert UsageRecord.objects.filter(user=user).count() == 1


def test_a_tiny_call_keeps_its_fractions_of_a_cent(user, call):
    record = call(user, input_tokens=3, output_tokens=1)

    assert record.cost == Decimal("0.0000175")
