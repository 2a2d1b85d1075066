"""The login throttle counts exactly, on the address the trusted proxies vouch for.

Simultaneous wrong passwords over two server processes get exactly the limit of password
checks; a forged X-Forwarded-For neither dodges nor resets the count (and is not what the
audit trail records); failures from someone else's address never lock a victim out.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from accounts import throttles
from accounts.models import AuditEvent, User
from accounts.tests.conftest import PASSWORD
from nexus.lib.client_address import forwarded_address

WRONG = "wrong-password"
LIMIT = 5  # LOGIN_FAILURES_PER_ACCOUNT's default


def login(client: httpx.Client, email: str, password: str, forwarded: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return client.post("/auth/login", json={"email": email, "password": password}, headers=headers)


@pytest.fixture
def alice(transactional_db) -> User:
    return User.objects.create_user("alice@example.com", PASSWORD)


def test_thirty_simultaneous_wrong_passwords_over_two_processes_get_exactly_the_limit(start_server, alice):
    # A long wait for a hashing slot: this test is about the throttle, not the hashing bound.
    servers = [start_server(PASSWORD_HASH_WAIT="30") for _ in range(2)]
    clients = [httpx.Client(base_url=server.url, timeout=60) for server in servers]

    def attempt(n: int) -> int:
        return login(clients[n % 2], "alice@example.com", WRONG).status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(attempt, range(30)))

    assert statuses.count(401) == LIMIT
    assert statuses.count(429) == 30 - LIMIT
    assert AuditEvent.objects.filter(action="login.failed", target="alice@example.com").count() == LIMIT


def test_a_forged_forwarded_address_does_not_dodge_the_throttle_without_proxies(start_server, alice):
    client = start_server().client()
    for _ in range(LIMIT):
        assert login(client, "alice@example.com", WRONG).status_code == 401
    for forged in ("203.0.113.9", "203.0.113.9, 198.51.100.1", "::1"):
        assert login(client, "alice@example.com", PASSWORD, forwarded=forged).status_code == 429
    ips = set(AuditEvent.objects.filter(action="login.failed").values_list("ip", flat=True))
    assert ips == {"127.0.0.1"}


def test_behind_one_proxy_only_the_address_it_wrote_counts(start_server, alice):
    # The proxy writes the address it saw last; whatever the client put before it is ignored.
    client = start_server(TRUSTED_PROXY_COUNT="1").client()
    for n in range(LIMIT):
        response = login(client, "alice@example.com", WRONG, forwarded=f"203.0.113.{n}, 198.51.100.7")
        assert response.status_code == 401
    for forged in ("203.0.113.99, 198.51.100.7", "10.0.0.1,198.51.100.7"):
        assert login(client, "alice@example.com", PASSWORD, forwarded=forged).status_code == 429
    ips = set(AuditEvent.objects.filter(action="login.failed").values_list("ip", flat=True))
    assert ips == {"198.51.100.7"}
    # Another client, as that proxy reports it, is not throttled.
    assert login(client, "alice@example.com", PASSWORD, forwarded="198.51.100.8").status_code == 200


def test_a_victim_is_not_locked_out_by_failures_from_another_address(start_server, alice):
    client = start_server(TRUSTED_PROXY_COUNT="1").client()
    for _ in range(3 * LIMIT):
        login(client, "alice@example.com", WRONG, forwarded="198.51.100.66")
    assert login(client, "alice@example.com", PASSWORD, forwarded="198.51.100.66").status_code == 429
    response = login(client, "alice@example.com", PASSWORD, forwarded="192.0.2.10")
    assert response.status_code == 200
    assert AuditEvent.objects.filter(action="login.succeeded", ip="192.0.2.10").count() == 1


def test_a_right_password_gives_its_place_back(start_server, alice):
    client = start_server().client()
    for _ in range(LIMIT - 1):
        assert login(client, "alice@example.com", WRONG).status_code == 401
    for _ in range(3):
        assert login(client, "alice@example.com", PASSWORD).status_code == 200
    assert login(client, "alice@example.com", WRONG).status_code == 401
    assert login(client, "alice@example.com", PASSWORD).status_code == 429


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.2"),
        (1, "203.0.113.9, 198.51.100.7", "198.51.100.7"),
        (2, "203.0.113.9, 198.51.100.7, 10.0.0.3", "198.51.100.7"),
        (2, "198.51.100.7", "10.0.0.2"),  # did not pass both proxies: the socket's address
        (1, "not-an-address", None),
        (1, "", "10.0.0.2"),
    ],
)
def test_the_client_address_is_the_nth_forwarded_entry_from_the_right(trusted, forwarded, expected):
    assert (
        forwarded_address(remote_addr="10.0.0.2", forwarded_for=forwarded, trusted_proxies=trusted)
        == expected
    )


def test_without_redis_the_in_process_counters_are_exact_too():
    counters = throttles._MemoryCounters()
    counter = (throttles.Counter("login:test", LIMIT, 900.0),)
    with ThreadPoolExecutor(max_workers=30) as pool:
        waits = list(pool.map(lambda n: counters.take(counter, f"attempt-{n}", 1000.0), range(30)))
    assert waits.count(0.0) == LIMIT
    assert all(0 < wait <= 900 for wait in waits if wait)
    assert counters.take(counter, "later", 1000.0 + 900.1) == 0.0  # the window moved on
