"""Every response carries a request id, the client's own when it is well formed."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_a_request_id_is_generated(client):
    first = client.get("/health")["X-Request-ID"]
    second = client.get("/health")["X-Request-ID"]
    assert len(first) == 32
    assert first != second


def test_the_clients_request_id_is_echoed(client):
    assert client.get("/health", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"


def test_a_malformed_request_id_is_replaced(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="bad id\twith spaces")
    assert response["X-Request-ID"] != "bad id\twith spaces"
    assert len(response["X-Request-ID"]) == 32


def test_error_responses_carry_it_too(client):
    assert client.get("/nowhere", HTTP_X_REQUEST_ID="r-404")["X-Request-ID"] == "r-404"
