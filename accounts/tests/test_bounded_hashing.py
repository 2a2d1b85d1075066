"""At most PASSWORD_HASH_CONCURRENCY password hashes at once per process; the rest wait
PASSWORD_HASH_WAIT, then get 503 `busy` with Retry-After. /health stays fast meanwhile and
the process's memory stays bounded (bench/login_memory.py measures it with the bound off)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from accounts.hashers import BoundedHashing, hashing_slot
from accounts.models import AuditEvent
from accounts.tests.conftest import PASSWORD
from nexus.tests.hashers import CheapArgon2PasswordHasher


class BoundedCheapHasher(BoundedHashing, CheapArgon2PasswordHasher):
    pass


@pytest.fixture
def bounded(settings):
    settings.PASSWORD_HASHERS = ["accounts.tests.test_bounded_hashing.BoundedCheapHasher"]
    settings.PASSWORD_HASH_CONCURRENCY = 1
    settings.PASSWORD_HASH_WAIT = 0.05


@pytest.fixture
def slots_taken(bounded):
    """Every slot of this process held by another thread until the test ends."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with hashing_slot():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    yield
    release.set()
    thread.join()


@pytest.mark.django_db
def test_a_login_that_finds_no_free_slot_is_503_busy_with_retry_after(api, alice, slots_taken):
    for email in ("alice@example.com", "ghost@example.com"):  # unknown emails wait alike
        response = api.post("/auth/login", {"email": email, "password": PASSWORD})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "busy"
        assert response["Retry-After"] == "1"
    assert not AuditEvent.objects.filter(action__startswith="login.").exists()


@pytest.mark.django_db
def test_busy_answers_do_not_count_as_failures(api, alice, bounded):
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with hashing_slot():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    for _ in range(8):
        assert api.post("/auth/login", {"email": "alice@example.com", "password": "x"}).status_code == 503
    release.set()
    thread.join()
    assert api.post("/auth/login", {"email": "alice@example.com", "password": PASSWORD}).status_code == 200


@pytest.mark.django_db
def test_a_hash_waits_for_a_slot_that_frees_in_time(api, alice, bounded, settings):
    settings.PASSWORD_HASH_WAIT = 5
    held = threading.Event()

    def hold() -> None:
        with hashing_slot():
            held.set()
            time.sleep(0.3)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    response = api.post("/auth/login", {"email": "alice@example.com", "password": PASSWORD})
    thread.join()
    assert response.status_code == 200


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_twenty_simultaneous_logins_keep_health_fast_and_memory_bounded(start_server, transactional_db):
    # Production's Argon2 cost (about 100 MiB a hash); the default bound of 2 and wait of 1 s.
    server = start_server(LOGIN_FAILURES_PER_ADDRESS="1000")
    client = httpx.Client(base_url=server.url, timeout=60)
    assert client.get("/health").status_code == 200
    client.post("/auth/login", json={"email": "warm@example.com", "password": "x"})  # first hash's setup
    before = peak_rss_mib(server.process.pid)

    health: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as prober:
            while not done.is_set():
                started = time.monotonic()
                assert prober.get("/health").status_code == 200
                health.append(time.monotonic() - started)
                time.sleep(0.05)

    def login(n: int) -> httpx.Response:
        return client.post("/auth/login", json={"email": f"nobody{n}@example.com", "password": "guess"})

    prober = threading.Thread(target=probe)
    prober.start()
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(login, range(20)))
    done.set()
    prober.join()

    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {401, 503}
    busy = [response for response in responses if response.status_code == 503]
    assert busy, statuses
    assert all(r.json()["error"]["code"] == "busy" and r.headers["Retry-After"] == "1" for r in busy)
    assert statuses.count(401) >= 2  # the slots did work
    # Twenty unbounded hashes hold /health for several seconds; two at a time, well under two
    # (the bound allows for another test process sharing the cores).
    assert health and max(health) < 2.0, health
    # Two hashes at 100 MiB at a time, not twenty: well under 2 GiB of growth.
    assert peak_rss_mib(server.process.pid) - before < 450
