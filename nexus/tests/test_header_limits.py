"""Oversized request headers get 431 in the shared error shape, not a dropped connection.

Against a live daphne, whose HTTP parser (Twisted's) enforces the limits.
"""

from __future__ import annotations

import socket

import httpx
import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_a_64_kb_header_gets_431_in_the_error_shape(module_server):
    with module_server.client() as http:
        response = http.get("/health", headers={"Cookie": "session=" + "x" * 65536})
    assert response.status_code == 431
    assert response.reason_phrase == "Request Header Fields Too Large"
    assert response.headers["Connection"] == "close"
    assert response.json()["error"]["code"] == "headers_too_large"


def test_many_headers_together_over_the_limit_get_431(module_server):
    headers = {f"X-Filler-{index}": "y" * 1000 for index in range(20)}  # 20 KB, each line small
    with module_server.client() as http:
        response = http.get("/health", headers=headers)
    assert response.status_code == 431
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_the_connection_is_closed_after_the_431(module_server):
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"z" * 65536 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", module_server.port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):  # ends when the server closes
            received += chunk
    assert received.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert received.count(b"HTTP/1.1") == 1


def test_a_normal_request_works_after_an_oversized_one(module_server):
    with module_server.client() as http:
        assert http.get("/health", headers={"X-Big": "z" * 65536}).status_code == 431
    with httpx.Client(base_url=module_server.url, timeout=10) as http:
        response = http.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
