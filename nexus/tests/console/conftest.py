"""Fixtures of the operator's console tests: an admin and a user, and clients carrying their JWTs."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services as account_services
from accounts.models import Role, User

PASSWORD = "Operator-Console-Pass-42"


def make_user(email: str, *, role: str = Role.USER, password: str | None = None) -> User:
    """A user of `role`; without a password, none is hashed (fast) and none can sign in with one."""
    user = User.objects.create_user(email, password)
    account_services.user_role_assign(user=user, role=role)
    return user


def jwt_for(user: User) -> str:
    return str(RefreshToken.for_user(user).access_token)


def bearer(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt_for(user)}"}


@pytest.fixture
def admin_user(db) -> User:
    return make_user("operator@example.com", role=Role.ADMIN)


@pytest.fixture
def member(db) -> User:
    return make_user("member@example.com")


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    def make(user: User) -> APIClient:
        client = APIClient()
        client.default_format = "json"
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_for(user)}")
        return client

    return make


@pytest.fixture
def chat(fake_upstream, transactional_db):
    """A priced model on the fake upstream (OpenAI wire format), a user and an admin to chat with it."""
    model = fake_upstream.make_model(
        kind="openai",
        name="gpt-test",
        context_window=8192,
        max_output_tokens=256,
        input_price_per_million=Decimal("1.00"),
        output_price_per_million=Decimal("2.00"),
    )
    user = make_user("chatter@example.com")
    admin = make_user("chat-admin@example.com", role=Role.ADMIN)
    return SimpleNamespace(
        model=model,
        upstream=fake_upstream,
        user=user,
        admin=admin,
        user_headers=bearer(user),
        admin_headers=bearer(admin),
    )


@pytest.fixture(autouse=True)
async def _release_connections_of_sync_threads():
    """Django's test clients keep the connections their sync views opened; give them back."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def record_call():
    """Admits and records one AI call the way the turn does; returns the usage record."""
    from billing import services as billing_services
    from llm.selectors import model_target

    def record(user, model, *, api_key=None, outcome="complete", input_tokens=100, output_tokens=50):
        target = model_target(model)
        admission = billing_services.admission_reserve(
            user=user, api_key=api_key, target=target, input_tokens=input_tokens, max_output_tokens=100
        )
        return billing_services.usage_record_create(
            admission=admission,
            target=target,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            estimated=False,
            cached=False,
            outcome=outcome,
            latency_ms=900,
            ttft_ms=200,
        )

    return record


@pytest.fixture
def catalog(db):
    """Two priced demo models (no network) on one provider, the second a fallback of the first."""
    from llm.models import Model, ModelFallback, Provider

    provider = Provider.objects.create(name="house", kind="demo")
    primary = Model.objects.create(
        provider=provider,
        name="house-large",
        upstream_name="large",
        input_price_per_million=Decimal("2"),
        output_price_per_million=Decimal("8"),
    )
    backup = Model.objects.create(
        provider=provider,
        name="house-small",
        upstream_name="small",
        input_price_per_million=Decimal("1"),
        output_price_per_million=Decimal("2"),
    )
    ModelFallback.objects.create(model=primary, fallback=backup, position=0)
    return SimpleNamespace(provider=provider, primary=primary, backup=backup)
