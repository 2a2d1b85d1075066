"""AI calls wait for a database thread on the event loop, then get 503 `busy` with
Retry-After, in their surface's error shape, past the queue's bound (nexus.lib.db_threads);
and a server's pool is its share of PostgreSQL's connections (nexus.lib.database_pool)."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.db import connection

from accounts.services import api_key_create
from billing.models import UsageRecord
from chats.models import Conversation
from nexus.lib import database_pool, db_threads
from nexus.tests.reliability.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def caller(fake_upstream):
    fake_upstream.make_model(kind="openai", name="gpt-test")
    user = make_user("queue@example.com")
    _, secret = api_key_create(user=user, name="queue")
    return {"Authorization": f"Bearer {secret}", "x-api-key": secret}


@pytest.fixture
async def one_place(monkeypatch):
    """This loop's queue with a single place to prepare in."""
    monkeypatch.setattr(db_threads, "db_pool_size", lambda: 1)
    db_threads._queues.pop(asyncio.get_running_loop(), None)
    yield
    db_threads._queues.pop(asyncio.get_running_loop(), None)


async def completion(async_client, caller):
    return await async_client.post(
        "/v1/chat/completions",
        {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]},
        content_type="application/json",
        headers=caller,
    )


async def test_a_call_past_the_queue_bound_is_told_to_retry_and_changes_nothing(
    async_client, caller, one_place, settings
):
    settings.DATABASE_QUEUE_MAX = 0
    async with db_threads.db_queue():  # every place is taken
        response = await completion(async_client, caller)
        messages = await async_client.post(
            "/v1/messages",
            {"model": "gpt-test", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]},
            content_type="application/json",
            headers=caller,
        )

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert json.loads(response.content)["error"]["code"] == "busy"
    assert messages.status_code == 529  # Anthropic's overloaded, in Anthropic's shape
    assert json.loads(messages.content)["error"]["type"] == "overloaded_error"
    assert await db_threads.in_thread(UsageRecord.objects.count)() == 0
    assert await db_threads.in_thread(Conversation.objects.count)() == 0


async def test_a_call_waits_its_turn_instead_of_failing(async_client, caller, one_place, settings):
    settings.DATABASE_QUEUE_TIMEOUT = 30
    async with db_threads.db_queue():
        waiting = asyncio.ensure_future(completion(async_client, caller))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # in line, on the loop
    response = await waiting

    assert response.status_code == 200
    assert json.loads(response.content)["choices"][0]["message"]["content"]


async def test_a_call_that_waits_too_long_is_busy(async_client, caller, one_place, settings):
    settings.DATABASE_QUEUE_TIMEOUT = 0.2
    async with db_threads.db_queue():
        response = await completion(async_client, caller)

    assert response.status_code == 503
    assert json.loads(response.content)["error"]["code"] == "busy"


def test_the_pool_is_lowered_to_this_process_share_of_postgresql(settings, monkeypatch):
    pool = {"min_size": 2, "max_size": 20, "timeout": 10}
    monkeypatch.setitem(settings.DATABASES["default"], "OPTIONS", {"pool": pool})
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    settings.SERVER_PROCESSES = max_connections  # more processes than connections to share
    settings.DATABASE_RESERVED_CONNECTIONS = 0

    assert database_pool.pool_fit() == 1
    assert pool == {"min_size": 1, "max_size": 1, "timeout": 10}

    pool["max_size"] = 20
    settings.SERVER_PROCESSES = 1
    assert database_pool.pool_fit() == 20  # never raised past DATABASE_POOL_MAX_SIZE


def test_the_share_leaves_the_reserved_and_kept_connections():
    limits = database_pool.ServerLimits(max_connections=100, reserved=3)
    assert database_pool.pool_share(limits, processes=4, kept=10) == 21
    assert database_pool.pool_share(limits, processes=200, kept=10) == 1
