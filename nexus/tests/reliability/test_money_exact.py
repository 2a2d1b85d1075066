"""Money on the live stack: reservations grow with the reply, a budget that cannot pay more
ends the reply there, simultaneous calls overspend by at most a step each, and what the
provider refused costs nothing. PostgreSQL's ledger is the judge."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from billing.models import QuotaCounter, Reservation, UsageRecord
from billing.services import user_quota_set
from llm import catalog
from nexus.tests.reliability.conftest import jwt_for, make_user
from nexus.tests.reliability.test_faults import sse_events, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

STEP = 10  # tokens a reservation grows by, in these tests
WORDS = " ".join(["tok"] * 100)  # a reply of 100 one-token words


@pytest.fixture
def stack(start_server, fake_upstream):
    # A dime a token out, nothing in: what a reply costs is what it generated.
    fake_upstream.make_model(
        kind="openai",
        name="dear",
        max_output_tokens=1000,
        input_price_per_million=Decimal("0"),
        output_price_per_million=Decimal("100000"),
    )
    user = make_user("spender@example.com")
    env = {"RESERVE_OUTPUT_TOKENS": str(STEP), "RESERVE_STEP_TOKENS": str(STEP)}
    servers = [start_server(**env), start_server(**env)]
    return {
        "urls": [server.url for server in servers],
        "headers": {"Authorization": f"Bearer {jwt_for(user)}"},
        "user": user,
        "upstream": fake_upstream,
    }


def send(url: str, headers: dict[str, str], message: str = "Talk.") -> list[tuple[str, dict]]:
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/chat/send", json={"message": message, "model": "dear"}, headers=headers)
    if response.status_code != 200:
        return [("refused", response.json())]
    return sse_events(response.text)


def settled() -> bool:
    return not Reservation.objects.exists()


def spent(user) -> Decimal:
    return QuotaCounter.objects.get(user=user, api_key=None).used


def test_a_reply_longer_than_its_first_reservation_is_reserved_for_as_it_grows(stack):
    stack["upstream"].configure(reply=" ".join(["tok"] * 35))
    events = send(stack["urls"][0], stack["headers"])
    done = events[-1]
    assert done[0] == "done" and done[1]["finish_reason"] == "stop"
    assert wait_until(settled)
    assert spent(stack["user"]) == Decimal("3.5")


def test_a_budget_that_cannot_pay_the_next_step_ends_the_reply_there(stack):
    user_quota_set(user=stack["user"], monthly_budget=Decimal("2.5"))
    stack["upstream"].configure(reply=WORDS, token_delay=0.002)
    events = send(stack["urls"][0], stack["headers"])
    kind, done = events[-1]
    assert kind == "done"
    assert (done["finish_reason"], done["finish_detail"]) == ("length", "budget")
    text = "".join(data["content"] for event, data in events if event == "delta")
    assert 10 <= len(text.split()) <= 25
    assert wait_until(settled)
    assert spent(stack["user"]) <= Decimal("2.5")
    requests = stack["upstream"].wait_for(lambda seen: bool(seen) and seen[-1]["closed_by_client"])
    assert requests[-1]["closed_by_client"]  # the upstream was told to stop


def test_simultaneous_calls_overspend_by_at_most_a_step_each(stack):
    budget = Decimal("10")
    user_quota_set(user=stack["user"], monthly_budget=budget, calls_per_minute=0)
    stack["upstream"].configure(reply=WORDS, token_delay=0.001)
    barrier = threading.Barrier(10)

    def call(index: int) -> list[tuple[str, dict]]:
        barrier.wait(timeout=30)
        return send(stack["urls"][index % 2], stack["headers"])

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(call, range(10)))
    assert wait_until(settled)
    assert spent(stack["user"]) <= budget  # reservations grew before the tokens came
    started = [events for events in results if events[0][0] != "refused"]
    assert len(started) >= 5  # the budget pays for the start of most of them
    assert sum(record.cost for record in UsageRecord.objects.all()) == spent(stack["user"])


@pytest.mark.parametrize(
    "knobs",
    [
        {"error_status": 401},
        {"error_status": 429, "retry_after": 30},
        {"error_status": 503},
        {"error_status": 400, "context_length": True},
    ],
    ids=["bad-provider-key", "rate-limited", "unavailable", "context-length"],
)
def test_a_call_the_provider_refused_before_its_first_token_costs_nothing(stack, knobs):
    # Input that costs something: only the rule makes the charge 0.
    stack["upstream"].make_model(kind="openai", name="priced-input", input_price_per_million=Decimal("1000"))
    stack["upstream"].configure(**knobs)
    with httpx.Client(base_url=stack["urls"][0], timeout=30) as client:
        response = client.post(
            "/chat/send", json={"message": "Talk.", "model": "priced-input"}, headers=stack["headers"]
        )
    events = sse_events(response.text)
    assert events[-1][0] == "error"
    assert wait_until(settled)
    record = UsageRecord.objects.get()
    assert (record.outcome, record.cost) == ("failed", 0)
    assert record.input_tokens > 0  # kept for information
    assert spent(stack["user"]) == 0


def test_six_simultaneous_chats_of_a_new_user_on_the_dearest_seeded_model_all_start(
    start_server, fake_upstream
):
    """A new user with the default budget, on the catalog's most expensive model, no max_tokens:
    reserving its whole maximum output (128,000 tokens, 3.84 each) let only two of six start."""
    dearest = max(
        (entry for entries in catalog.CATALOG.values() for entry in entries),
        key=lambda entry: entry.output_price * entry.max_output_tokens,
    )
    fake_upstream.make_model(
        kind="openai",
        name=dearest.name,
        max_output_tokens=dearest.max_output_tokens,
        context_window=dearest.context_window,
        input_price_per_million=dearest.input_price,
        output_price_per_million=dearest.output_price,
    )
    fake_upstream.configure(reply="Fine, thanks.", token_delay=0.05)
    user = make_user("newcomer@example.com")
    headers = {"Authorization": f"Bearer {jwt_for(user)}"}
    urls = [start_server().url, start_server().url]
    barrier = threading.Barrier(6)

    def chat(index: int) -> list[tuple[str, dict]]:
        barrier.wait(timeout=30)
        return send_to(urls[index % 2], headers, dearest.name)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(chat, range(6)))
    assert [events[-1][0] for events in results] == ["done"] * 6
    assert wait_until(settled)
    assert UsageRecord.objects.count() == 6


def send_to(url: str, headers: dict[str, str], model: str) -> list[tuple[str, dict]]:
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post(
            "/chat/send", json={"message": "How are you?", "model": model}, headers=headers
        )
    return sse_events(response.text) if response.status_code == 200 else [("refused", response.json())]
