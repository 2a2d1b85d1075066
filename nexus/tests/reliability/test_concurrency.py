"""Limits hold exactly under simultaneous calls spread over two server processes that share
one PostgreSQL and one Redis: the per-minute rate limit and the monthly budget."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest

from accounts.services import api_key_create
from billing.models import QuotaCounter, Reservation, UsageRecord
from billing.services import api_key_quota_set, user_quota_set
from nexus.tests.reliability.conftest import make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

COMPLETION = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}


def at_once(urls: list[str], headers: dict[str, str], times: int) -> list[httpx.Response]:
    """`times` completions released together, alternating between the servers."""
    barrier = threading.Barrier(times)

    def call(index: int) -> httpx.Response:
        with httpx.Client(base_url=urls[index % len(urls)], timeout=30) as client:
            barrier.wait(timeout=30)
            return client.post("/v1/chat/completions", json=COMPLETION, headers=headers)

    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(call, range(times)))


def codes(responses: list[httpx.Response]) -> dict[Any, int]:
    counted: dict[Any, int] = {}
    for response in responses:
        key = 200 if response.status_code == 200 else (response.status_code, response.json()["error"]["code"])
        counted[key] = counted.get(key, 0) + 1
    return counted


@pytest.fixture
def setup(start_server, fake_upstream):
    fake_upstream.make_model(
        kind="openai",
        name="gpt-test",
        max_output_tokens=10,
        input_price_per_million=Decimal("0"),
        output_price_per_million=Decimal("100000"),  # 0.10 a token: a call reserves at most 1.00
    )
    # Each call holds its upstream for a while, so every admission happens before any settles.
    fake_upstream.configure(reply="a b c", token_delay=0.1)
    user = make_user("burst@example.com")
    key, secret = api_key_create(user=user, name="burst")
    user_quota_set(user=user, monthly_budget=Decimal("1000"))  # only the rate limit binds
    environment = {"AI_CALLS_PER_MINUTE": "20", "DATABASE_POOL_MAX_SIZE": "40"}
    servers = [start_server(**environment), start_server(**environment)]
    return {
        "user": user,
        "key": key,
        "headers": {"Authorization": f"Bearer {secret}"},
        "urls": [server.url for server in servers],
        "upstream": fake_upstream,
    }


def test_sixty_simultaneous_calls_over_two_processes_let_exactly_twenty_through(setup):
    responses = at_once(setup["urls"], setup["headers"], 60)
    assert codes(responses) == {200: 20, (429, "rate_limit_exceeded"): 40}
    assert all(r.headers.get("Retry-After") for r in responses if r.status_code == 429)
    # Refused calls never reached the upstream, and each admitted one was recorded once.
    completions = [r for r in setup["upstream"].requests() if r["path"].endswith("/chat/completions")]
    assert len(completions) == 20
    assert UsageRecord.objects.filter(user=setup["user"]).count() == 20


def test_a_keys_own_limit_holds_across_two_processes_beside_its_users(setup):
    api_key_quota_set(api_key=setup["key"], monthly_budget=None, calls_per_minute=7)
    responses = at_once(setup["urls"], setup["headers"], 24)
    assert codes(responses) == {200: 7, (429, "rate_limit_exceeded"): 17}
    assert UsageRecord.objects.filter(api_key=setup["key"]).count() == 7


def test_calls_at_the_budget_edge_never_overspend_it(setup):
    # 5.50 holds five reservations of at most 1.00 each, not six.
    user_quota_set(user=setup["user"], monthly_budget=Decimal("5.50"), calls_per_minute=0)
    responses = at_once(setup["urls"], setup["headers"], 30)
    assert codes(responses) == {200: 5, (429, "insufficient_quota"): 25}

    records = UsageRecord.objects.filter(user=setup["user"])
    assert records.count() == 5
    counter = QuotaCounter.objects.get(user=setup["user"], api_key__isnull=True)
    assert counter.used == sum(record.cost for record in records)
    assert counter.used <= Decimal("5.50")
    assert counter.reserved == 0
    assert not Reservation.objects.filter(user=setup["user"]).exists()
