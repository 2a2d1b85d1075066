"""A live server, started as scripts/serve and the image start it, writes one log line per
request, with the request's id; refusals are not errors; its 429s say "Too Many Requests".

daphne's own access log is off (`--access-log /dev/null`): it would be a second line per
request, without the id. Django's django.request line for a 4xx or 5xx is a second one too
(at ERROR for every 503, the maintenance refusal included); the request's nexus.http line
stands for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI, RateLimitError

from accounts import services as account_services
from accounts.models import Role
from conftest import ROOT, free_port, wait_for_port
from nexus import services
from nexus.tests.console.conftest import bearer, catalog, make_user

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

__all__ = ["catalog"]


def test_every_way_of_serving_turns_daphnes_access_log_off():
    serve = (ROOT / "scripts" / "serve").read_text()
    image = (ROOT / "Dockerfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    assert 'exec daphne -b "$host" -p "$port" --access-log /dev/null nexus.asgi:application' in serve
    assert "exec daphne -b 0.0.0.0 -p 8000 --access-log /dev/null nexus.asgi:application" in image
    app_service = compose.split("\n  app:\n", 1)[1].split("\n  proxy:\n", 1)[0]
    assert "\n    command:" not in app_service  # the image's own command, as above


class LoggingServer:
    """daphne as scripts/serve runs it, on the test database, logging JSON at INFO to a file."""

    def __init__(self, **env: str) -> None:
        from django.db import connection

        database = connection.settings_dict
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(suffix=".log")  # noqa: SIM115 (closed in stop)
        environment = {
            **os.environ,
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}",
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "json",
            "LLM_DEMO_TOKEN_DELAY": "0",
            **env,
        }
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)),
                *("--access-log", "/dev/null", "nexus.asgi:application"),  # as scripts/serve
            ],
            cwd=ROOT,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.process, self.log)

    def lines(self) -> list[dict]:
        time.sleep(0.3)  # a request's line is written just after its response
        text = Path(self.log.name).read_text()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def raw_lines(self) -> list[str]:
        return Path(self.log.name).read_text().splitlines()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture
def logging_server(transactional_db) -> Iterator[LoggingServer]:
    server = LoggingServer(AI_CALLS_PER_MINUTE="2")
    yield server
    server.stop()


@pytest.fixture
def member(catalog):
    """A user with a demo model to call (no network)."""
    return make_user("member@example.com")


def lines_of(server: LoggingServer, request_id: str) -> list[dict]:
    return [line for line in server.lines() if line.get("request_id") == request_id]


def test_a_request_is_one_line_with_its_id_and_no_other_line(logging_server):
    response = httpx.get(f"{logging_server.url}/health", headers={"X-Request-ID": "one-line-1"})
    assert response.headers["x-request-id"] == "one-line-1"
    (line,) = lines_of(logging_server, "one-line-1")
    assert (line["logger"], line["level"], line["route"], line["status"]) == (
        "nexus.http",
        "info",
        "/health",
        200,
    )
    # daphne's access log: 127.0.0.1:41234 - - [02/Dec/2026:10:00:00] "GET /health" 200 15
    assert not any(" - - [" in raw for raw in logging_server.raw_lines())


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/no-such-page", 404), ("GET", "/users/me", 401), ("GET", "/auth/login", 405)],
)
def test_a_refused_request_is_one_info_line(logging_server, method, path, status):
    response = httpx.request(method, f"{logging_server.url}{path}", headers={"X-Request-ID": "refused-1"})
    assert response.status_code == status
    (line,) = lines_of(logging_server, "refused-1")
    assert (line["logger"], line["level"], line["status"]) == ("nexus.http", "info", status)


def test_the_maintenance_refusal_is_a_warning_not_an_error(logging_server, member, catalog):
    admin = make_user("operator@example.com", role=Role.ADMIN)
    services.runtime_settings_update(actor=admin, changes={"maintenance_mode": True})
    response = httpx.post(
        f"{logging_server.url}/chat/send",
        json={"message": "Hello", "model": catalog.primary.name},
        headers={**bearer(member), "X-Request-ID": "maintenance-1"},
    )
    assert (response.status_code, response.json()["error"]["code"]) == (503, "maintenance")
    (line,) = lines_of(logging_server, "maintenance-1")
    assert (line["logger"], line["level"], line["status"]) == ("nexus.http", "warning", 503)
    assert [line for line in logging_server.lines() if line["level"] in ("error", "critical")] == []


def test_an_ai_callers_429_says_too_many_requests_on_every_surface(logging_server, member, catalog):
    """Two AI calls a minute: the third, on any surface, is refused with the standard phrase."""
    _, secret = account_services.api_key_create(user=member, name="phrases")
    client = OpenAI(base_url=f"{logging_server.url}/v1", api_key=secret, max_retries=0)
    for _ in range(2):
        client.chat.completions.create(
            model=catalog.primary.name, messages=[{"role": "user", "content": "Hi"}]
        )

    with pytest.raises(RateLimitError) as refused:
        client.chat.completions.create(
            model=catalog.primary.name, messages=[{"role": "user", "content": "Hi"}], stream=True
        )
    assert refused.value.response.reason_phrase == "Too Many Requests"
    for path, body in (
        ("/chat/send", {"message": "Hi", "model": catalog.primary.name}),
        (
            "/v1/chat/completions",
            {"model": catalog.primary.name, "messages": [{"role": "user", "content": "Hi"}]},
        ),
    ):
        response = httpx.post(
            f"{logging_server.url}{path}", json=body, headers={"Authorization": f"Bearer {secret}"}
        )
        assert (response.status_code, response.reason_phrase) == (429, "Too Many Requests"), path
        assert response.headers["retry-after"]
    refusals = [line for line in logging_server.lines() if line.get("status") == 429]
    assert len(refusals) == 3 and {line["level"] for line in refusals} == {"info"}
