"""Every error a client can meet has the one shape of DESIGN.md and a fitting status."""

from __future__ import annotations

import json
import logging

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.urls("nexus.tests.urls")]


def assert_error_shape(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"type", "code", "message", "param", "fields"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def test_invalid_input_is_400_with_fields(client):
    response = client.post("/test/echo", {"name": "x" * 20, "count": 0}, content_type="application/json")
    error = assert_error_shape(response, 400)
    assert error["type"] == "invalid_request_error"
    assert set(error["fields"]) == {"name", "count"}
    assert error["param"] == "name"


def test_unparseable_json_is_400(client):
    response = client.post("/test/echo", "{not json", content_type="application/json")
    error = assert_error_shape(response, 400, "parse_error")
    assert "not valid JSON" in error["message"]


def test_invalid_utf8_is_400(client):
    response = client.post("/test/echo", b'{"name": "\xff\xfe"}', content_type="application/json")
    assert_error_shape(response, 400, "parse_error")


def test_deeply_nested_json_is_400(client):
    response = client.post("/test/echo", "[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert_error_shape(response, 400, "parse_error")


def test_nan_is_not_json(client):
    response = client.post("/test/echo", '{"name": "a", "count": NaN}', content_type="application/json")
    assert_error_shape(response, 400, "parse_error")


def test_non_json_body_is_415(client):
    response = client.post("/test/echo", "name=a&count=1", content_type="application/x-www-form-urlencoded")
    assert_error_shape(response, 415, "unsupported_media_type")


def test_over_large_body_is_413(client, settings):
    settings.MAX_REQUEST_BYTES = 2048
    body = json.dumps({"name": "a", "count": 1, "padding": "x" * 4096})
    response = client.post("/test/echo", body, content_type="application/json")
    assert_error_shape(response, 413, "request_too_large")


def test_missing_credentials_are_401(client):
    response = client.get("/test/private")
    error = assert_error_shape(response, 401, "not_authenticated")
    assert error["type"] == "authentication_error"


def test_garbage_token_is_401(client):
    response = client.get("/test/private", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert_error_shape(response, 401)


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_path_is_404(client, settings, debug):
    settings.DEBUG = debug
    error = assert_error_shape(client.get("/no/such/path"), 404, "not_found")
    assert error["type"] == "not_found_error"


def test_wrong_method_is_405_with_allow(client):
    response = client.post("/health")
    assert_error_shape(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET"


def test_wrong_method_on_an_api_view_is_405(client):
    assert_error_shape(client.delete("/test/echo"), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/test/broken", "/test/broken-plain"])
@pytest.mark.parametrize("debug", [False, True])
def test_unhandled_error_is_a_generic_500_logged_with_its_request_id(client, settings, caplog, path, debug):
    settings.DEBUG = debug
    with caplog.at_level(logging.ERROR, logger="nexus.errors"):
        response = client.get(path, HTTP_X_REQUEST_ID="req-500-check")
    error = assert_error_shape(response, 500, "server_error")
    assert "internal detail" not in response.content.decode()
    assert error["type"] == "api_error"
    assert response["X-Request-ID"] == "req-500-check"
    records = [r for r in caplog.records if r.name == "nexus.errors"]
    assert len(records) == 1
    assert records[0].request_id == "req-500-check"
    assert records[0].exc_info is not None


def test_an_unreachable_database_is_503_not_500(client, caplog):
    # PostgreSQL down or restarting is a dependency that is unavailable, not a bug: the
    # client is told to try again, and the pool reconnects by itself.
    with caplog.at_level(logging.WARNING, logger="nexus.errors"):
        response = client.get("/test/database-down")
    error = assert_error_shape(response, 503, "service_unavailable")
    assert "127.0.0.1" not in error["message"]
    assert [r.levelname for r in caplog.records if r.name == "nexus.errors"] == ["WARNING"]


def test_admin_keeps_its_html_pages(client):
    response = client.get("/admin/no-such-page/")
    assert response.status_code in (302, 404)
    assert not response.get("Content-Type", "").startswith("application/json")
