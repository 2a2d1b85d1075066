"""daphne's status lines carry the standard reason phrase: "429 Too Many Requests", not "Unknown Status".

Clients, proxies and their logs show the phrase; daphne takes it from Twisted's table, which
Nexus fills from http.HTTPStatus at startup (nexus.lib.reason_phrases).
"""

from __future__ import annotations

import socket
from http import HTTPStatus

import pytest
from daphne.http_protocol import WebRequest

import nexus.asgi  # noqa: F401 (what daphne imports: it fills the table)

# Every status Nexus answers with, on some path.
NEXUS_STATUSES = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 429, 500, 502, 503, 504]


def phrase_daphne_writes(status: int) -> bytes:
    """The phrase of daphne's request object after it sets `status`, as every response does."""
    request = WebRequest.__new__(WebRequest)  # the method daphne calls needs no connection
    request.setResponseCode(status)
    return request.code_message


@pytest.mark.parametrize("status", NEXUS_STATUSES)
def test_every_status_nexus_sends_has_its_standard_phrase(status):
    assert phrase_daphne_writes(status) == HTTPStatus(status).phrase.encode()


def test_anthropics_overloaded_status_is_named_too():
    assert phrase_daphne_writes(529) == b"Overloaded"


def test_a_status_nobody_defined_still_gets_a_line():
    assert phrase_daphne_writes(599) == b"Unknown Status"


# --- on a live daphne server --------------------------------------------------------------------


def raw_status_line(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while b"\r\n" not in received:
            chunk = connection.recv(4096)
            if not chunk:
                break
            received += chunk
    return received.split(b"\r\n", 1)[0]


@pytest.mark.live
def test_a_live_404_says_not_found(module_server, transactional_db):
    line = raw_status_line(module_server.port, b"GET /no-such-page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert line == b"HTTP/1.1 404 Not Found"


@pytest.mark.live
def test_a_live_429_says_too_many_requests(module_server, transactional_db):
    """The sixth failed login in a row is throttled: the cheapest 429 there is."""
    with module_server.client() as http:
        for _ in range(5):
            failed = http.post("/auth/login", json={"email": "nobody@example.com", "password": "wrong"})
            assert failed.status_code == 401
        throttled = http.post("/auth/login", json={"email": "nobody@example.com", "password": "wrong"})
    assert (throttled.status_code, throttled.reason_phrase) == (429, "Too Many Requests")
    assert throttled.headers["retry-after"]
    body = b'{"email": "nobody@example.com", "password": "wrong"}'
    line = raw_status_line(
        module_server.port,
        b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    assert line == b"HTTP/1.1 429 Too Many Requests"


@pytest.mark.live
@pytest.mark.parametrize(
    ("method", "path", "request_options", "status"),
    [
        ("POST", "/auth/login", {"json": {}}, 400),
        ("GET", "/users/me", {}, 401),
        ("GET", "/auth/login", {}, 405),
        ("POST", "/auth/login", {"content": b"email=a", "headers": {"Content-Type": "text/plain"}}, 415),
    ],
    ids=["400", "401", "405", "415"],
)
def test_live_errors_carry_their_standard_phrase(
    module_server, transactional_db, method, path, request_options, status
):
    with module_server.client() as http:
        response = http.request(method, path, **request_options)
    assert response.status_code == status
    assert response.reason_phrase == HTTPStatus(status).phrase
    assert response.json()["error"]["code"]


@pytest.mark.live
def test_a_live_413_says_its_phrase(module_server, transactional_db, settings):
    too_large = b'{"email": "' + b"a" * (settings.MAX_REQUEST_BYTES + 1) + b'"}'
    with module_server.client() as http:
        response = http.post("/auth/login", content=too_large, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.reason_phrase) == (413, "Request Entity Too Large")
