"""A turn that ends while PostgreSQL is down: the client is told `done`, and the reply is
saved complete and charged once when PostgreSQL returns, with no restart of Nexus.

PostgreSQL is a throwaway cluster of this module (test_faults.py), Redis the test run's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django_redis import get_redis_connection

from chats.journal import JOURNAL
from chats.streams import alive_key
from conftest import ROOT
from nexus.tests.reliability.test_faults import own_postgres, sse_events, wait_until  # noqa: F401

pytestmark = [pytest.mark.live]

OUTAGE_SECONDS = 18
ALIVE_SECONDS = "2"

SETUP = """
import json
from decimal import Decimal
from accounts.models import Role, User
from accounts.services import api_key_create, user_role_assign
from llm.crypto import encrypt
from llm.models import Model, Provider
user = User.objects.create_user("durable@example.com", "correct horse battery staple")
user_role_assign(user=user, role=Role.USER)
_, secret = api_key_create(user=user, name="durable")
provider = Provider.objects.create(
    name="fake-openai", kind="openai", base_url=BASE_URL,
    api_key_encrypted=encrypt("sk-fake-openai-0123456789abcdef"),
    connect_timeout=2, first_token_timeout=5, idle_timeout=5, total_timeout=30, max_retries=0,
)
Model.objects.create(
    provider=provider, name="gpt-durable", upstream_name="gpt-durable", max_output_tokens=64,
    input_price_per_million=Decimal("1.00"), output_price_per_million=Decimal("2.00"),
)
print(json.dumps({"user_id": user.pk, "secret": secret}))
"""


def manage(database_url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "STREAM_ALIVE_SECONDS": ALIVE_SECONDS}
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def rows(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, connect_timeout=2) as connection:
        return connection.execute(query, params).fetchall()


def ledger(database_url: str, user_id: int) -> dict[str, Any]:
    """What a user was charged and what is still held for them, read straight from PostgreSQL."""
    records = rows(
        database_url,
        "SELECT outcome, input_tokens, output_tokens, cost FROM billing_usagerecord WHERE user_id = %s",
        user_id,
    )
    counters = rows(
        database_url,
        "SELECT used, reserved, tokens_reserved FROM billing_quotacounter WHERE user_id = %s",
        user_id,
    )
    held = rows(database_url, "SELECT count(*) FROM billing_reservation WHERE user_id = %s", user_id)
    return {"records": records, "counters": counters, "reservations": held[0][0]}


def test_a_reply_finished_during_a_postgresql_outage_is_saved_and_charged_once_when_it_returns(
    start_server,
    own_postgres,  # noqa: F811 (the fixture imported above)
    fake_upstream,
):
    base_url = fake_upstream.base_url("openai")
    output = manage(own_postgres.url, "shell", "-c", f"BASE_URL = {base_url!r}\n{SETUP}")
    created = json.loads(output.strip().splitlines()[-1])
    headers = {"Authorization": f"Bearer {created['secret']}"}
    server = start_server(
        DATABASE_URL=own_postgres.url, STREAM_ALIVE_SECONDS=ALIVE_SECONDS, DATABASE_POOL_TIMEOUT="2"
    )
    fake_upstream.configure(tokens=30, token_delay=0.1)
    redis = get_redis_connection("default")

    body = {"message": "Count", "model": "gpt-durable"}
    with (
        server.client() as client,
        client.stream("POST", "/chat/send", json=body, headers=headers, timeout=30) as response,
    ):
        assert response.status_code == 200
        raw = b""
        chunks = response.iter_raw()
        while raw.count(b"event: delta") < 3:
            raw += next(chunks)
        own_postgres._pg_ctl("stop")  # the turn goes on streaming; its end finds PostgreSQL down
        stopped_at = time.monotonic()
        for chunk in chunks:
            raw += chunk
    events = sse_events(raw.decode())
    name, done = events[-1]
    assert name == "done", events[-3:]
    assert done["usage"]["output_tokens"] > 0
    text = "".join(data["content"] for event, data in events if event == "delta")
    key = f"message:{done['message_id']}"

    # Told `done` while PostgreSQL is down: the outcome was journaled first.
    journaled = redis.hget(JOURNAL, key)
    assert journaled is not None
    entry = json.loads(journaled)
    assert (entry["phase"], entry["status"], entry["text"]) == ("finished", "complete", text)

    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
    # Owed, so still its process's: no one may repair it as interrupted meanwhile.
    assert redis.exists(alive_key(key))
    own_postgres._pg_ctl("start")

    def saved() -> bool:
        found = rows(own_postgres.url, "SELECT status FROM chats_message WHERE id = %s", done["message_id"])
        return found[0][0] == "complete"

    assert wait_until(saved, timeout=12), "the journaled reply was not saved once PostgreSQL was back"
    assert wait_until(lambda: not redis.hexists(JOURNAL, key), timeout=5)
    reply = rows(
        own_postgres.url,
        "SELECT content, status, output_tokens, error_code FROM chats_message WHERE id = %s",
        done["message_id"],
    )
    assert reply == [(text, "complete", done["usage"]["output_tokens"], "")]
    charged = ledger(own_postgres.url, created["user_id"])
    assert len(charged["records"]) == 1
    outcome, input_tokens, output_tokens, cost = charged["records"][0]
    assert (outcome, input_tokens, output_tokens) == (
        "complete",
        done["usage"]["input_tokens"],
        done["usage"]["output_tokens"],
    )
    expected = (Decimal(input_tokens) * 1 + Decimal(output_tokens) * 2) / 1_000_000
    assert cost == expected
    assert charged["reservations"] == 0
    # The user's counter and the key's: each charged the cost, nothing left held.
    assert len(charged["counters"]) == 2
    assert all(row == (cost, 0, 0) for row in charged["counters"]), charged["counters"]

    # The same journal entry applied twice more (a replay after a partial success): by the
    # server's own sweep and by `repair_streams`, it changes nothing.
    assert wait_until(lambda: not redis.exists(alive_key(key)), timeout=float(ALIVE_SECONDS) + 2)
    for _ in range(2):
        redis.hset(JOURNAL, key, journaled)
        manage(own_postgres.url, "repair_streams")
        assert not redis.hexists(JOURNAL, key)
    assert ledger(own_postgres.url, created["user_id"]) == charged
    assert (
        rows(
            own_postgres.url,
            "SELECT content, status, output_tokens, error_code FROM chats_message WHERE id = %s",
            done["message_id"],
        )
        == reply
    )
    assert settings.REDIS_URL  # the journal lives in the test run's own Redis database
