"""What one AI call costs the server beyond the provider: thread crossings, SQL statements and
Redis round trips, pinned as Zulip pins its cache round trips, so a change that adds any to the
hot path fails here and says which (issue 21).

The bounds are today's counts; lower them when a change saves one."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field

import pytest
import redis
import redis.asyncio
from asgiref.sync import AsyncToSync, SyncToAsync
from django.db.backends import utils as db_utils

from accounts.services import api_key_create
from chats import runner
from nexus.tests.reliability.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Costs:
    into_threads: list[str] = field(default_factory=list)
    back_to_loop: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    redis: Counter[str] = field(default_factory=Counter)

    def clear(self) -> None:
        self.into_threads.clear()
        self.back_to_loop.clear()
        self.statements.clear()
        self.redis.clear()


@pytest.fixture
def costs(monkeypatch):
    """Spies on every thread of this process (each still does its work)."""
    seen = Costs()

    def name(function) -> str:
        return getattr(function, "__qualname__", repr(function))

    original_s2a, original_a2s = SyncToAsync.__call__, AsyncToSync.__call__

    async def into_thread(self, *args, **kwargs):
        seen.into_threads.append(name(self.func))
        return await original_s2a(self, *args, **kwargs)

    def back_to_loop(self, *args, **kwargs):
        seen.back_to_loop.append(name(self.awaitable))
        return original_a2s(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", into_thread)
    monkeypatch.setattr(AsyncToSync, "__call__", back_to_loop)

    original_execute = db_utils.CursorWrapper._execute_with_wrappers  # type: ignore[attr-defined]

    def execute(self, sql, params, many, executor):
        seen.statements.append(sql.split(" ", 1)[0] if sql else "")
        return original_execute(self, sql, params, many, executor)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute_with_wrappers", execute)

    for module in (redis.client, redis.asyncio.client):
        original_command = module.Redis.execute_command
        original_pipeline = module.Pipeline.execute

        if module is redis.client:

            def command(self, *args, _original=original_command, **options):
                seen.redis[str(args[0])] += 1
                return _original(self, *args, **options)

            def pipeline(self, *args, _original=original_pipeline, **kwargs):
                seen.redis["pipeline"] += 1
                return _original(self, *args, **kwargs)
        else:

            async def command(self, *args, _original=original_command, **options):
                seen.redis[str(args[0])] += 1
                return await _original(self, *args, **options)

            async def pipeline(self, *args, _original=original_pipeline, **kwargs):
                seen.redis["pipeline"] += 1
                return await _original(self, *args, **kwargs)

        monkeypatch.setattr(module.Redis, "execute_command", command)
        monkeypatch.setattr(module.Pipeline, "execute", pipeline)
    return seen


@pytest.fixture
def caller(fake_upstream):
    fake_upstream.make_model(kind="openai", name="gpt-test")
    user = make_user("hot@example.com")
    _, secret = api_key_create(user=user, name="hot")
    return {"Authorization": f"Bearer {secret}"}


async def settled() -> None:
    """Until this process runs no turn (its finish is saved)."""
    for _ in range(500):
        if not runner._running:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the turn did not finish")


async def completion(async_client, caller, **body):
    response = await async_client.post(
        "/v1/chat/completions",
        {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}], **body},
        content_type="application/json",
        headers=caller,
    )
    assert response.status_code == 200
    if body.get("stream"):
        assert b"[DONE]" in b"".join([chunk async for chunk in response.streaming_content])
    else:
        assert json.loads(response.content)["choices"][0]["message"]["content"]
    await settled()


async def chat_send(async_client, caller):
    response = await async_client.post(
        "/chat/send", {"message": "Hi", "model": "gpt-test"}, content_type="application/json", headers=caller
    )
    assert response.status_code == 200
    assert b"event: done" in b"".join([chunk async for chunk in response.streaming_content])
    await settled()


# Django's own: the request_started and request_finished signals' sync receivers.
DJANGO_HANDLER = {"Signal.asend.<locals>.sync_send", "HttpResponseBase.close"}
# The view (authentication, validation, admission, the saved question), then the finish.
ONE_TURN = ["in_thread(View.as_view.<locals>.view)", "in_thread(turn_finish)"]


@pytest.mark.parametrize(
    ("kind", "statements", "round_trips"),
    [("whole", 11, 7), ("stream", 11, 7), ("chat", 17, 11)],
    ids=["v1", "v1-stream", "chat-send"],
)
async def test_one_call_crosses_into_a_thread_twice_and_never_back(
    async_client, caller, costs, kind, statements, round_trips
):
    async def call():
        if kind == "chat":
            await chat_send(async_client, caller)  # a new conversation each time
        else:
            await completion(async_client, caller, stream=kind == "stream")

    await call()  # the process's caches are filled
    costs.clear()
    await call()

    # Not one per middleware hook (Django's seven sync middlewares, nexus.middleware), no
    # async_to_sync for the start or a notification, no thread while the provider answers.
    assert [name for name in costs.into_threads if name not in DJANGO_HANDLER] == ONE_TURN
    assert costs.back_to_loop == []
    assert len(costs.statements) <= statements, costs.statements
    assert sum(costs.redis.values()) <= round_trips, costs.redis
