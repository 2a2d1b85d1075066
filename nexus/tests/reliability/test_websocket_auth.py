"""The chat WebSocket on live servers, with a real client: who it serves, for how long, and
how fast.

A socket answers every refusal with a close code after the handshake (4401 for credentials,
4403 for a forbidden origin), ends itself when the credentials it opened with stop being
good (logout, revoked key, deactivated account, changed password, expiry), runs the turns
of many sockets at once, and opens cleanly right after Redis restarts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from accounts.models import Role
from accounts.services import api_key_create
from chats.models import Message
from nexus.tests.reliability.conftest import PASSWORD, make_user
from nexus.tests.reliability.test_faults import own_redis  # noqa: F401  # a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

SEND = {"type": "send", "message": "Hi", "model": "gpt-test"}


@pytest.fixture
def _fast_passwords() -> None:
    """The servers sign these users in: their hashes must be ones the servers verify (Argon2)."""


@pytest.fixture
def model(fake_upstream):
    fake_upstream.make_model(kind="openai", name="gpt-test", max_output_tokens=64)
    fake_upstream.configure(reply="all is well")
    return fake_upstream


def ws_url(server, token: str) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/chat?token={token}"


def frames_until(ws: ClientConnection, kind: str, timeout: float = 10) -> list[dict[str, Any]]:
    frames = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames.append(json.loads(ws.recv(timeout=deadline - time.monotonic())))
        if frames[-1]["type"] == kind:
            return frames
    raise AssertionError(f"no {kind} frame in {frames}")


def close_code(ws: ClientConnection, timeout: float = 5) -> int | None:
    """The code the server closed with, after any frames still on their way."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


def served(ws: ClientConnection) -> bool:
    ws.send(json.dumps(SEND))
    return frames_until(ws, "done")[-1]["type"] == "done"


def login(client, email: str) -> dict[str, str]:
    response = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


# --- refused at once ---------------------------------------------------------------------------


def expired_token() -> str:
    token = RefreshToken.for_user(make_user("expired@example.com")).access_token
    token.set_exp(lifetime=timedelta(seconds=-1))
    return str(token)


@pytest.mark.parametrize(
    "token", ["", "not-a-token", "nx-unknownkey", "expired"], ids=["missing", "bad", "unknown-key", "expired"]
)
def test_missing_bad_or_expired_credentials_are_accepted_then_closed_with_4401(module_server, token):
    token = expired_token() if token == "expired" else token
    with connect(ws_url(module_server, token)) as ws:  # the handshake succeeds: no 403, no 1006
        assert close_code(ws) == 4401


def test_a_key_limited_to_other_addresses_is_closed_with_4401_and_one_of_them_is_served(module_server, model):
    user = make_user("ranged@example.com")
    _, elsewhere = api_key_create(user=user, name="office", allowed_networks=["203.0.113.0/24"])
    _, here = api_key_create(user=user, name="local", allowed_networks=["127.0.0.0/8"])
    with connect(ws_url(module_server, elsewhere)) as ws:
        assert close_code(ws) == 4401
    with connect(ws_url(module_server, here)) as ws:
        assert served(ws)


def test_a_forbidden_origin_is_closed_with_4403_while_native_clients_and_own_pages_are_served(
    module_server, model
):
    user = make_user("origin@example.com")
    _, secret = api_key_create(user=user, name="origin")
    url = ws_url(module_server, secret)
    with connect(url, origin=Origin("https://evil.example")) as ws:
        assert close_code(ws) == 4403
    assert not Message.objects.exists()
    with connect(url) as ws:  # a native client: no Origin at all
        assert served(ws)
    with connect(url, origin=Origin("http://localhost:3000")) as ws:  # a host of ALLOWED_HOSTS
        assert served(ws)


# --- credentials that end while the socket is open ---------------------------------------------


def end_by_logout(client, account: dict[str, Any]) -> None:
    response = client.post(
        "/auth/logout",
        json={"refresh": account["refresh"]},
        headers={"Authorization": f"Bearer {account['access']}"},
    )
    assert response.status_code == 204, response.text


def end_by_password_change(client, account: dict[str, Any]) -> None:
    response = client.post(
        "/users/me/password",
        json={"old_password": PASSWORD, "new_password": "another horse battery staple"},
        headers={"Authorization": f"Bearer {account['access']}"},
    )
    assert response.status_code == 200, response.text


def end_by_deactivation(client, account: dict[str, Any]) -> None:
    admin = make_user("admin@example.com", role=Role.ADMIN)
    response = client.patch(
        f"/users/{account['user'].pk}",
        json={"is_active": False},
        headers={"Authorization": f"Bearer {login(client, admin.email)['access']}"},
    )
    assert response.status_code == 200, response.text


def end_by_key_revocation(client, account: dict[str, Any]) -> None:
    response = client.delete(
        f"/keys/{account['key'].pk}", headers={"Authorization": f"Bearer {account['access']}"}
    )
    assert response.status_code == 204, response.text


ENDINGS: dict[str, tuple[Callable[..., None], str]] = {
    "logout": (end_by_logout, "access"),
    "password-change": (end_by_password_change, "access"),
    "deactivation-jwt": (end_by_deactivation, "access"),
    "deactivation-key": (end_by_deactivation, "secret"),
    "key-revocation": (end_by_key_revocation, "secret"),
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
@pytest.mark.parametrize(
    "frame", [SEND, {"type": "resume", "message_id": 1}, {"type": "dance"}], ids=["send", "resume", "bad"]
)
def test_an_open_socket_whose_credentials_ended_is_closed_with_4401_at_its_next_frame_and_starts_nothing(
    module_server, model, ending, frame
):
    end, credential = ENDINGS[ending]
    user = make_user("ending@example.com")
    key, secret = api_key_create(user=user, name="ending")
    with module_server.client() as client:
        account: dict[str, Any] = {**login(client, user.email), "user": user, "key": key, "secret": secret}
        with connect(ws_url(module_server, account[credential])) as ws:
            assert served(ws)
            messages, calls = Message.objects.count(), len(model.requests())
            end(client, account)
            ws.send(json.dumps(frame))
            assert close_code(ws) == 4401
    assert (Message.objects.count(), len(model.requests())) == (messages, calls)


def test_a_socket_is_closed_with_4401_when_its_access_token_expires_without_a_frame(module_server, model):
    token = RefreshToken.for_user(make_user("expiry@example.com")).access_token
    token.set_exp(lifetime=timedelta(seconds=3))
    with connect(ws_url(module_server, str(token))) as ws:
        assert served(ws)
        started = time.monotonic()
        assert close_code(ws, timeout=10) == 4401
        assert 1 < time.monotonic() - started < 6


# --- many sockets ------------------------------------------------------------------------------

PREPARE_SECONDS = 0.3


@pytest.fixture
def slow_prepare() -> Iterator[None]:
    """Each user message takes PREPARE_SECONDS to insert: real database work that waits, as a
    prepare on a busy database does, without using a core of this machine."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION nexus_test_slow_insert() RETURNS trigger AS $$ "
            f"BEGIN PERFORM pg_sleep({PREPARE_SECONDS}); RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE OR REPLACE TRIGGER nexus_test_slow_insert BEFORE INSERT ON chats_message FOR EACH ROW "
            "WHEN (NEW.role = 'user') EXECUTE FUNCTION nexus_test_slow_insert()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS nexus_test_slow_insert ON chats_message")
        cursor.execute("DROP FUNCTION IF EXISTS nexus_test_slow_insert()")


async def _turn(ws: Any) -> float:
    """Sends a turn and reads it to its end (no write may outlive the test); when it started."""
    await ws.send(json.dumps(SEND))
    started_at = None
    while (frame := json.loads(await ws.recv()))["type"] != "done":
        if frame["type"] == "start":
            started_at = time.monotonic()
    assert started_at is not None
    return started_at


async def _timed_sends(urls: list[str]) -> tuple[float, float]:
    """How long five turns take to start one after another, and at once."""
    sockets = [await aconnect(url) for url in urls]
    try:
        # The process's first turn imports and connects what later ones reuse: not timed.
        await asyncio.wait_for(_turn(sockets[0]), timeout=20)
        began = time.monotonic()
        for ws in sockets:
            last_start = await asyncio.wait_for(_turn(ws), timeout=20)
        one_after_another = last_start - began
        began = time.monotonic()
        starts = await asyncio.wait_for(asyncio.gather(*(_turn(ws) for ws in sockets)), timeout=20)
        at_once = max(starts) - began
    finally:
        for ws in sockets:
            await ws.close()
    return one_after_another, at_once


def test_turns_on_five_sockets_are_prepared_in_parallel(module_server, model, slow_prepare):
    urls = []
    for index in range(5):
        _, secret = api_key_create(user=make_user(f"parallel{index}@example.com"), name="parallel")
        urls.append(ws_url(module_server, secret))
    one_after_another, at_once = asyncio.run(_timed_sends(urls))
    assert one_after_another >= 5 * PREPARE_SECONDS
    # On one shared thread the five would take as long at once as one after another.
    assert at_once < one_after_another / 2, (one_after_another, at_once)


# --- Redis restarted ---------------------------------------------------------------------------


def test_a_handshake_right_after_a_redis_restart_is_served_and_with_redis_down_closes_cleanly(
    start_server,
    own_redis,  # noqa: F811
    model,
):
    server = start_server(REDIS_URL=own_redis.url)
    _, secret = api_key_create(user=make_user("restart@example.com"), name="restart")
    url = ws_url(server, secret)
    with connect(url) as ws:  # the process now holds pooled connections to this Redis
        assert served(ws)
    own_redis.stop()
    own_redis.start()
    with connect(url) as ws:  # once a 500: a pooled connection the restart had closed
        assert served(ws)

    own_redis.stop()
    try:
        with connect(url) as ws:
            assert close_code(ws) == 4503  # try again later
    except InvalidStatus as refused:  # pragma: no cover - the failure this test is for
        pytest.fail(f"the handshake was answered {refused.response.status_code}")
