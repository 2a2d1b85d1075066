"""Fixtures of the chats tests: two users and an API client for each."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice@example.com", "correct horse battery staple")


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob@example.com", "correct horse battery staple")


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def alice_client(alice) -> APIClient:
    return client_for(alice)


@pytest.fixture
def bob_client(bob) -> APIClient:
    return client_for(bob)


# --- Streaming turns, in process ------------------------------------------------------------


@dataclass
class SseEvent:
    id: int
    event: str
    data: dict[str, Any]
    received_at: float


def parse_sse(payload: bytes) -> list[tuple[int, str, dict[str, Any]]]:
    events = []
    for block in payload.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return events


def bearer(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


async def read_events(response, *, limit: int | None = None) -> list[SseEvent]:
    """The events of an SSE response as they arrive; stops reading after `limit` events."""
    events: list[SseEvent] = []
    iterator = response.streaming_content.__aiter__()
    try:
        async for chunk in iterator:
            for event_id, event, data in parse_sse(chunk):
                events.append(SseEvent(event_id, event, data, time.monotonic()))
            if limit is not None and len(events) >= limit:
                break
    finally:
        await iterator.aclose()
    return events


@pytest.fixture
def chat(fake_upstream, transactional_db):
    """A model on the fake upstream (OpenAI wire format), and a user to chat with it."""
    model = fake_upstream.make_model(
        kind="openai",
        name="gpt-test",
        context_window=8192,
        max_output_tokens=256,
        input_price_per_million=Decimal("1.00"),
        output_price_per_million=Decimal("2.00"),
    )
    user = User.objects.create_user("carol@example.com", "correct horse battery staple")
    return SimpleNamespace(model=model, user=user, headers=bearer(user), upstream=fake_upstream)


async def send(client, headers, **body):
    return await client.post("/chat/send", body, content_type="application/json", headers=headers)


@pytest.fixture(autouse=True)
async def _release_connections_of_sync_threads():
    """Django's test clients keep the connections their sync views opened; give them back.

    Otherwise the last one still holds the test database when pytest-django drops it.
    """
    yield
    await sync_to_async(connections.close_all)()
