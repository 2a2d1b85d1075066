"""Amounts of money: the cost of a call from its tokens and prices, and the default budget.

Prices are per million tokens, in the price list's currency (llm.Model). Costs are kept
as Decimal with COST_PLACES decimal places everywhere (ledger, counters, API), so sums
of the ledger and of the counters agree to the last digit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured

from llm.types import ModelTarget
from nexus.lib import runtime

COST_PLACES = 10
_QUANTUM = Decimal(1).scaleb(-COST_PLACES)
_MILLION = Decimal(1_000_000)
ZERO = Decimal(0).quantize(_QUANTUM)


def quantize(amount: Decimal) -> Decimal:
    return amount.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def plain_amount(amount: Decimal) -> str:
    """An amount as a plain number, exact, without trailing zeros: "0.0048", "12.5", "0".

    What people and spreadsheets read: str() of a cost with COST_PLACES places writes a zero
    as "0E-10" (which a spreadsheet reads as text) and every other cost with ten digits."""
    text = f"{amount:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def call_cost(*, target: ModelTarget, input_tokens: int, output_tokens: int) -> Decimal:
    """input_tokens * input price + output_tokens * output price, prices per million tokens."""
    if input_tokens < 0 or output_tokens < 0:
        raise ValueError("Token counts cannot be negative.")
    raw = (
        Decimal(input_tokens) * Decimal(target.input_price_per_million)
        + Decimal(output_tokens) * Decimal(target.output_price_per_million)
    ) / _MILLION
    return quantize(raw)


def parse_budget(value: object, *, name: str = "DEFAULT_MONTHLY_BUDGET") -> Decimal:
    """A budget as written in settings ("10.00"): a finite, non-negative decimal number."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name}={value!r} is not a decimal amount such as 10.00.") from None
    if not amount.is_finite() or amount < 0:
        raise ImproperlyConfigured(f"{name}={value!r} must be a finite amount of 0 or more, such as 10.00.")
    return quantize(amount)


def default_monthly_budget() -> Decimal:
    """The runtime setting, by default settings.DEFAULT_MONTHLY_BUDGET, as a Decimal.

    The environment's value is checked at start by BillingConfig.ready (before the app
    registry is ready, the runtime settings are the environment's).
    """
    return parse_budget(runtime.default_monthly_budget())
