"""Fixtures of billing's tests: users, priced models as the turn sees them, admissions."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from accounts.models import ApiKey, User
from billing import services
from llm.models import Model, Provider
from llm.types import ModelTarget, ProviderConfig


def target_of(model: Model) -> ModelTarget:
    """The snapshot llm hands to the turn, built from the rows."""
    provider = model.provider
    return ModelTarget(
        id=model.pk,
        name=model.name,
        upstream_name=model.upstream_name,
        provider=ProviderConfig(
            id=provider.pk, name=provider.name, kind=provider.kind, base_url="", api_key=""
        ),
        context_window=model.context_window,
        max_output_tokens=model.max_output_tokens,
        input_price_per_million=model.input_price_per_million,
        output_price_per_million=model.output_price_per_million,
    )


@pytest.fixture
def make_target(db) -> Callable[..., ModelTarget]:
    def make(name: str = "gpt-test", input_price: str = "2.50", output_price: str = "10.00") -> ModelTarget:
        provider, _ = Provider.objects.get_or_create(name="openai-test", defaults={"kind": "openai"})
        model = Model.objects.create(
            provider=provider,
            name=name,
            upstream_name=name,
            input_price_per_million=Decimal(input_price),
            output_price_per_million=Decimal(output_price),
        )
        return target_of(model)

    return make


@pytest.fixture
def target(make_target) -> ModelTarget:
    return make_target()


@pytest.fixture
def user(db) -> User:
    return User.objects.create_user("ada@example.com", "correct horse battery")


@pytest.fixture
def api_key(user) -> ApiKey:
    return ApiKey.objects.create(user=user, name="script", prefix="nx-test", digest="0" * 64)


@pytest.fixture
def call(target):
    """Admits and records one call, the way the turn does; returns the UsageRecord."""

    def run(
        user: User,
        *,
        api_key: ApiKey | None = None,
        served: ModelTarget | None = None,
        input_tokens: int = 100,
        output_tokens: int = 50,
        outcome: str = "complete",
        cached: bool = False,
    ):
        admission = services.admission_reserve(
            user=user, api_key=api_key, target=target, input_tokens=input_tokens, max_output_tokens=1000
        )
        return services.usage_record_create(
            admission=admission,
            target=served or target,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            estimated=False,
            cached=cached,
            outcome=outcome,
            latency_ms=1200,
            ttft_ms=300,
        )

    return run


def run_at_once(function: Callable[[], object], times: int) -> list[object]:
    """Calls `function` from `times` threads released together; returns results or exceptions.

    Each thread has its own database connection (Django's are per thread) and gives it
    back when done; use with transactional_db so the threads see the test's rows.
    """
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connections

    barrier = Barrier(times)

    def worker() -> object:
        try:
            barrier.wait(timeout=30)
            return function()
        except Exception as exc:
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=times) as pool:
        futures = [pool.submit(worker) for _ in range(times)]
        return [future.result() for future in futures]


class FrozenClock:
    """Stands in for the rate limiter's clock: a minute that moves only when a test says."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def ratelimit_clock(monkeypatch) -> FrozenClock:
    """Freezes the rate limiter's clock, so no call leaves the window in the middle of a test."""
    clock = FrozenClock(1_900_000_000.0)
    monkeypatch.setattr("billing.ratelimits.clock", clock.time)
    return clock


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Users' passwords are beside the point here: hash them cheaply."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
