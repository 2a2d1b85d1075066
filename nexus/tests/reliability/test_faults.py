"""Faults of the parts Nexus depends on, against live servers: Redis stopped, PostgreSQL
restarted under load, an upstream that fails, stalls or cuts the connection.

Redis and PostgreSQL are stopped only as throwaway servers this module starts on free
ports: the machine's own, which other test runs share, are never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from accounts.services import api_key_create
from billing.models import QuotaCounter, UsageRecord
from chats.models import Conversation, Message
from conftest import ROOT, free_port
from nexus.tests.reliability.conftest import make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

RECOVERY_SECONDS = 10.0


def wait_until(check: Callable[[], bool], timeout: float = RECOVERY_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


# --- a throwaway Redis -----------------------------------------------------------------------


class ThrowawayRedis:
    """A redis-server of this test alone, on a free port, that can be stopped and started again."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed; the fault tests need it")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_until(self._answers, timeout=10), "the throwaway Redis did not start"

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis() -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def caller(fake_upstream):
    """A user with an API key and a JWT, and a model on the fake upstream."""
    from rest_framework_simplejwt.tokens import RefreshToken

    fake_upstream.make_model(kind="openai", name="gpt-test", max_output_tokens=64)
    fake_upstream.configure(reply="all is well")
    user = make_user("faults@example.com")
    _, secret = api_key_create(user=user, name="faults")
    return {
        "user": user,
        "key": {"Authorization": f"Bearer {secret}"},
        "jwt": {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"},
    }


COMPLETION = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}


def test_with_redis_stopped_health_and_ai_calls_are_503_and_recover_when_it_returns(
    start_server, own_redis, caller
):
    server = start_server(REDIS_URL=own_redis.url)
    with server.client() as client:
        assert client.get("/health").status_code == 200
        assert client.post("/v1/chat/completions", json=COMPLETION, headers=caller["key"]).status_code == 200

        own_redis.stop()
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["cache"] == "error"
        # The rate limit fails closed: no AI call is let through uncounted.
        for path, body in (
            ("/v1/chat/completions", COMPLETION),
            ("/chat/send", {"message": "Hi", "model": "gpt-test"}),
        ):
            response = client.post(path, json=body, headers=caller["key"])
            assert response.status_code == 503, (path, response.text)
            assert response.json()["error"]["code"] == "service_unavailable"
            assert "try again" in response.json()["error"]["message"].lower()
        # A JWT cannot be checked against the logout denylist: refused, not guessed.
        response = client.get("/chat/conversations", headers=caller["jwt"])
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        # A reply another process writes cannot be stopped without telling that process.
        conversation = Conversation.objects.create(owner=caller["user"], title="t")
        elsewhere = Message.objects.create(conversation=conversation, role="assistant", status="streaming")
        response = client.post(f"/chat/messages/{elsewhere.pk}/stop", headers=caller["key"])
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        # What needs no Redis goes on (an API key's last use is an optimisation only).
        assert client.get("/v1/models", headers=caller["key"]).status_code == 200

        own_redis.start()  # same port, empty: the server is not restarted
        assert wait_until(lambda: client.get("/health").status_code == 200)
        assert client.get("/chat/conversations", headers=caller["jwt"]).status_code == 200
        response = client.post("/v1/chat/completions", json=COMPLETION, headers=caller["key"])
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == "all is well"


def test_with_redis_stopped_and_no_rate_limit_a_reply_still_streams_and_is_saved(
    start_server, own_redis, caller
):
    """Stream buffering and notifications degrade: the reader in this process still gets it all."""
    server = start_server(REDIS_URL=own_redis.url, AI_CALLS_PER_MINUTE="0")
    own_redis.stop()
    with server.client() as client:
        response = client.post(
            "/chat/send", json={"message": "Hi", "model": "gpt-test"}, headers=caller["key"]
        )
    assert response.status_code == 200, response.text
    events = sse_events(response.text)
    assert events[-1][0] == "done", events
    assert "".join(data["content"] for name, data in events if name == "delta") == "all is well"
    reply = Message.objects.get(pk=events[-1][1]["message_id"])
    assert (reply.status, reply.content) == ("complete", "all is well")
    assert UsageRecord.objects.filter(user=caller["user"], outcome="complete").count() == 1


# --- a throwaway PostgreSQL ------------------------------------------------------------------

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary directory, on a free port, run as the `postgres`
    OS user when the tests run as root (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            pytest.fail(f"PostgreSQL's initdb is not at {PG_BIN}; set PG_BIN to its bin directory")
        self.directory = Path(tempfile.mkdtemp(prefix="nexus-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.directory, user="postgres", group="postgres")

    def _run(self, *command: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=timeout)

    def _pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.directory / "log"),
            "-w",
            "-m",
            "fast",
            action,
        )

    def create(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")
        self._pg_ctl("start")

    def restart(self) -> None:
        self._pg_ctl("restart")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("stop")
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[ThrowawayPostgres]:
    cluster = ThrowawayPostgres()
    try:
        cluster.create()
        env = {**os.environ, "DATABASE_URL": cluster.url}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=240,
        )
        yield cluster
    finally:
        cluster.destroy()


@dataclass
class Outcome:
    started: float
    finished: float
    path: str
    status: int


def load(client: httpx.Client, headers: dict[str, str], stop: threading.Event, out: list[Outcome]) -> None:
    paths = ("/health", "/users/me", "/chat/conversations")
    index = 0
    while not stop.is_set():
        path = paths[index % len(paths)]
        index += 1
        started = time.monotonic()
        try:
            status = client.get(path, headers=headers).status_code
        except httpx.HTTPError:
            status = 0  # no answer at all
        out.append(Outcome(started, time.monotonic(), path, status))
        time.sleep(0.01)


def test_postgresql_restarted_under_load_errors_only_during_the_outage_and_the_pool_recovers(
    start_server, own_postgres
):
    # Two pooled connections at most, so an idle restart leaves few dead ones to check; a
    # request waits up to 5 s for a good one (the pool backs off between failed checks).
    server = start_server(
        DATABASE_URL=own_postgres.url,
        DATABASE_POOL_MIN_SIZE="2",
        DATABASE_POOL_MAX_SIZE="2",
        DATABASE_POOL_TIMEOUT="5",
    )
    with server.client() as client:
        email, password = "restart@example.com", "correct horse battery staple"
        assert client.post("/auth/register", json={"email": email, "password": password}).status_code == 201
        login = client.post("/auth/login", json={"email": email, "password": password})
        headers = {"Authorization": f"Bearer {login.json()['access']}"}

    outcomes: list[Outcome] = []
    stop = threading.Event()
    clients = [httpx.Client(base_url=server.url, timeout=15) for _ in range(4)]
    workers = [threading.Thread(target=load, args=(c, headers, stop, outcomes)) for c in clients]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.0)
        outage_began = time.monotonic()
        own_postgres.restart()  # returns once PostgreSQL accepts connections again
        outage_ended = time.monotonic()
        time.sleep(3.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
        for c in clients:
            c.close()

    before = [o for o in outcomes if o.finished < outage_began]
    after = [o for o in outcomes if o.started >= outage_ended]
    during = [o for o in outcomes if o not in before and o not in after]
    assert before and after
    assert {o.status for o in before} == {200}, [o for o in before if o.status != 200]
    # The outage answers 503 (a dependency is down), never a 500 or a dropped connection.
    assert {o.status for o in during} <= {200, 503}, [o for o in during if o.status not in (200, 503)]
    # Once PostgreSQL is back, every request succeeds: the pool dropped its dead connections
    # by itself, without a restart of the server.
    failed_after = [(round(o.started - outage_ended, 2), o.path, o.status) for o in after if o.status != 200]
    assert failed_after == []

    # A restart while the pool sits idle: its connections are dead, and the next requests
    # must not be the ones to find out.
    own_postgres.restart()
    with server.client() as client:
        statuses = [client.get(path, headers=headers).status_code for path in ("/users/me", "/health") * 6]
    assert statuses == [200] * 12


# --- upstream failures -------------------------------------------------------------------------


@pytest.fixture
def priced(fake_upstream):
    model = fake_upstream.make_model(
        kind="openai",
        name="gpt-faulty",
        max_output_tokens=64,
        input_price_per_million=Decimal("1.00"),
        output_price_per_million=Decimal("2.00"),
        provider_fields={"max_retries": 0, "first_token_timeout": 1.0, "idle_timeout": 1.0},
    )
    user = make_user("upstream@example.com")
    _, secret = api_key_create(user=user, name="faults")
    return {"model": model, "user": user, "headers": {"Authorization": f"Bearer {secret}"}}


UPSTREAM_FAULTS = {
    "server-error": ({"error_status": 500}, "upstream_unavailable", ""),
    "rate-limited": ({"error_status": 429}, "upstream_rate_limited", ""),
    "bad-credentials": ({"error_status": 401}, "upstream_auth", ""),
    "first-token-timeout": ({"first_token_delay": 3}, "upstream_timeout", ""),
    "stall-mid-stream": ({"reply": "one two three", "token_delay": 3}, "upstream_timeout", "one"),
    "cut-connection": ({"reply": "one two three four five", "cut_after": 2}, None, "one two"),
    "error-event-mid-stream": ({"reply": "one two three four", "stream_error_after": 2}, None, "one two"),
}


@pytest.mark.parametrize("fault", sorted(UPSTREAM_FAULTS))
def test_an_upstream_fault_is_an_error_event_and_the_partial_reply_and_usage_are_kept(
    fault, module_server, priced, fake_upstream
):
    knobs, code, partial = UPSTREAM_FAULTS[fault]
    fake_upstream.configure(**knobs)
    with module_server.client() as client:
        response = client.post(
            "/chat/send", json={"message": "Hi", "model": "gpt-faulty"}, headers=priced["headers"], timeout=20
        )
    assert response.status_code == 200, response.text
    events = sse_events(response.text)
    assert events[0][0] == "start"
    name, data = events[-1]
    assert name == "error", events
    if code is not None:
        assert data["error"]["code"] == code
    assert data["error"]["message"]
    text = "".join(d["content"] for n, d in events if n == "delta")
    assert text.strip() == partial

    # Nothing lost: the reply keeps what was streamed, the call is recorded, the budget settled.
    reply = Message.objects.get(pk=data["message_id"])
    assert (reply.status, reply.content, reply.error_code) == ("failed", text, data["error"]["code"])
    record = UsageRecord.objects.get(user=priced["user"])
    assert record.outcome == "failed"
    assert record.output_tokens == data["usage"]["output_tokens"]
    counters = QuotaCounter.objects.filter(user=priced["user"])
    assert counters and all(counter.reserved == 0 for counter in counters)


@pytest.mark.parametrize(
    ("knobs", "status"),
    [({"error_status": 500}, 502), ({"first_token_delay": 3}, 504), ({"error_status": 401}, 502)],
    ids=["server-error", "timeout", "bad-credentials"],
)
def test_an_upstream_fault_before_the_first_token_is_a_plain_error_on_the_gateway(
    knobs, status, module_server, priced, fake_upstream
):
    fake_upstream.configure(**knobs)
    body = {"model": "gpt-faulty", "messages": [{"role": "user", "content": "Hi"}]}
    with module_server.client() as client:
        for stream in (False, True):
            response = client.post(
                "/v1/chat/completions", json={**body, "stream": stream}, headers=priced["headers"]
            )
            assert response.status_code == status, response.text
            assert response.json()["error"]["code"].startswith("upstream_")
    assert UsageRecord.objects.filter(user=priced["user"], outcome="failed").count() == 2
