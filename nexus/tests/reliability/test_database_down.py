"""PostgreSQL stopped under a live server: once it is known down, requests that need it get
their 503 at once instead of after the pool's timeout, and the first request after it is
back succeeds, without a restart of Nexus (nexus/lib/database_health.py).

PostgreSQL is a throwaway cluster of this test (test_faults.py's), never the shared one.
"""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from nexus.lib.database_health import DatabaseBreaker, DatabaseUnavailable
from nexus.tests.reliability.test_faults import ThrowawayPostgres, own_postgres, wait_until

__all__ = ["own_postgres"]  # a fixture of this module too

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

PASSWORD = "correct horse battery staple"
POOL_TIMEOUT = 3.0
PROBE_INTERVAL = 0.3


def timed_get(
    client: httpx.Client, path: str, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path, headers=headers)
    return response, time.monotonic() - started


def test_with_postgresql_stopped_requests_fail_fast_and_the_first_after_its_return_succeeds(
    start_server, own_postgres: ThrowawayPostgres
):
    server = start_server(
        DATABASE_URL=own_postgres.url,
        DATABASE_POOL_MIN_SIZE="2",
        DATABASE_POOL_TIMEOUT=str(POOL_TIMEOUT),
        DATABASE_PROBE_INTERVAL=str(PROBE_INTERVAL),
    )
    with server.client() as client:
        assert (
            client.post(
                "/auth/register", json={"email": "down@example.com", "password": PASSWORD}
            ).status_code
            == 201
        )
        login = client.post("/auth/login", json={"email": "down@example.com", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access']}"}
        assert client.get("/users/me", headers=headers).status_code == 200
        static_path = "/static/admin/css/base.css"
        static_served = client.get(static_path).status_code == 200

        own_postgres._pg_ctl("stop")
        try:
            # The request that finds the outage waits the pool's timeout at most; its failure
            # starts the probe, which declares PostgreSQL down.
            first, first_seconds = timed_get(client, "/users/me", headers)
            assert first.status_code == 503
            assert first_seconds < POOL_TIMEOUT + 2

            answers = [timed_get(client, "/users/me", headers) for _ in range(10)]
            assert [response.status_code for response, _ in answers] == [503] * 10
            assert {response.json()["error"]["code"] for response, _ in answers} == {"service_unavailable"}
            slowest = max(seconds for _, seconds in answers)
            assert slowest < 1.0, f"a 503 took {slowest:.2f} s"

            health, health_seconds = timed_get(client, "/health")
            assert health.status_code == 503
            assert health.json() == {"status": "error", "checks": {"database": "error", "cache": "ok"}}
            assert health_seconds < 1.0
            if static_served:  # static files need no database
                assert client.get(static_path).status_code == 200
        finally:
            own_postgres._pg_ctl("start")

        # A probe sees PostgreSQL back within its interval; then the very next request works.
        time.sleep(PROBE_INTERVAL * 3)
        after, after_seconds = timed_get(client, "/users/me", headers)
        assert after.status_code == 200, after.text
        assert after_seconds < 1.0
        assert [client.get(path, headers=headers).status_code for path in ("/users/me", "/health") * 3] == [
            200
        ] * 6


def test_a_pool_timeout_with_postgresql_answering_is_not_taken_for_an_outage():
    # A busy pool times out too; only a failed probe declares PostgreSQL down.
    probes: list[float] = []
    breaker = DatabaseBreaker(
        alias="busy", probe=lambda: probes.append(time.monotonic()), on_recovery=lambda: None
    )
    breaker.suspect()
    assert wait_until(lambda: bool(probes) and not breaker._probing, timeout=3)
    assert breaker.down is False
    breaker.raise_if_down()  # does not raise


def test_a_failed_probe_makes_connections_fail_at_once_until_one_succeeds():
    answers = iter([psycopg.OperationalError("connection refused"), None])
    recovered: list[bool] = []

    def probe() -> None:
        if (error := next(answers)) is not None:
            raise error

    breaker = DatabaseBreaker(alias="flaky", probe=probe, on_recovery=lambda: recovered.append(True))
    breaker.suspect()
    assert wait_until(lambda: breaker.down, timeout=3)
    with pytest.raises(DatabaseUnavailable):
        breaker.raise_if_down()
    assert wait_until(lambda: not breaker.down, timeout=5)
    assert recovered == [True]  # the pool was replaced before the breaker closed
