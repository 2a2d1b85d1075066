"""Test fixtures shared by every app: real PostgreSQL and Redis, API clients, live servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent


def _redis_database_per_worker() -> None:
    """Each pytest-xdist worker (scripts/test runs one per core) gets a Redis database of its
    own, the next ones after REDIS_URL's, since every test empties its Redis. Django's settings
    are loaded by now but no connection is open yet; the live servers read the environment.
    PostgreSQL needs nothing: pytest-django gives each worker a test database of its own."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not settings.REDIS_URL:
        return
    base = urlsplit(settings.REDIS_URL)
    database = int(base.path.strip("/") or 0) + int(worker[2:])
    if database > 15:
        raise pytest.UsageError(f"Worker {worker} would need Redis database {database}: use fewer workers")
    url = urlunsplit(base._replace(path=f"/{database}"))
    os.environ["REDIS_URL"] = settings.REDIS_URL = url
    settings.CACHES["default"]["LOCATION"] = url
    layer: dict[str, Any] = settings.CHANNEL_LAYERS["default"]
    layer["CONFIG"]["hosts"][0]["address"] = url


_redis_database_per_worker()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, with a sentence, when the real services are not there."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql" or not settings.REDIS_URL:
        pytest.exit(
            "The tests run on PostgreSQL and Redis: set DATABASE_URL and REDIS_URL, "
            "or run them with scripts/test, which does.",
            returncode=2,
        )
    import psycopg
    import redis

    try:
        psycopg.connect(
            host=database["HOST"] or "127.0.0.1",
            port=int(database["PORT"] or 5432),
            user=database["USER"],
            password=database["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        pytest.exit(
            f"PostgreSQL is not reachable at {database['HOST']}:{database['PORT']} ({exc}). "
            "Start it (pg_ctlcluster 15 main start) or point TEST_DATABASE_URL at one.",
            returncode=2,
        )
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.exit(
            f"Redis is not reachable at {settings.REDIS_URL} ({exc}). Start it "
            "(redis-server --daemonize yes) or point TEST_REDIS_URL at one.",
            returncode=2,
        )


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2 still, at its smallest cost: the test process hashes hundreds of passwords."""
    from django.test import override_settings

    hashers = ["nexus.tests.hashers.CheapArgon2PasswordHasher", *settings.PASSWORD_HASHERS]
    with override_settings(PASSWORD_HASHERS=hashers):
        yield


@pytest.fixture(scope="session", autouse=True)
def _uploads_in_a_temporary_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Files the tests upload (this process's and the live servers') stay out of the checkout."""
    from django.test import override_settings

    media = tmp_path_factory.mktemp("media")
    os.environ["MEDIA_ROOT"] = str(media)  # the live servers' environment is this one's
    with override_settings(MEDIA_ROOT=media):
        yield


@pytest.fixture(autouse=True)
def _empty_redis() -> Iterator[None]:
    """Each test starts with an empty Redis database: counters, caches and buffers."""
    from django_redis import get_redis_connection

    get_redis_connection("default").flushdb()
    yield


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: IO[bytes] | None = None, timeout: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = b""
            if log is not None:
                log.seek(0)
                output = log.read()
            elif process.stdout is not None:
                output = process.stdout.read()
            raise RuntimeError(f"the server exited early:\n{output.decode(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not listen on port {port} within {timeout}s")


class LiveServer:
    def __init__(self, port: int, process: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)


class ServerProcesses:
    """daphne processes serving Nexus on the test database; environment overrides per process.

    Their output goes to a temporary file (a pipe nobody reads would fill and block them).
    """

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, **env_overrides: str) -> LiveServer:
        from django.db import connection

        database = connection.settings_dict
        env = dict(os.environ)
        env["DATABASE_URL"] = (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        )
        env.update(env_overrides)
        port = free_port()
        log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "nexus.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        wait_for_port(port, process, log)
        return LiveServer(port, process)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def start_server() -> Iterator[Callable[..., LiveServer]]:
    """Starts daphne processes for one test. They see what tests commit (`transactional_db`)."""
    servers = ServerProcesses()
    yield servers.start
    servers.stop()


@pytest.fixture(scope="module")
def module_servers(django_db_setup: None) -> Iterator[ServerProcesses]:
    """daphne processes shared by the tests of a module (starting one costs about a second)."""
    servers = ServerProcesses()
    yield servers
    servers.stop()


@pytest.fixture(scope="module")
def module_server(module_servers: ServerProcesses) -> LiveServer:
    return module_servers.start()


# --- The fake LLM upstream (fake_upstream/) ---------------------------------------------


class FakeUpstream:
    """The fake provider server of the test session: knobs, what it received, catalog rows for it.

    fake_upstream.configure(reply="Hi there", token_delay=0.002)     knobs: fake_upstream.Knobs
    model = fake_upstream.make_model(kind="anthropic", name="claude-test")
    fake_upstream.requests()[-1]["body"]                             what the SDK sent
    """

    api_version = "2024-10-21"

    def __init__(self, url: str) -> None:
        self.url = url
        self._providers = 0

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, self.url + path, timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._call("POST", "/_reset")

    def configure(self, **knobs: Any) -> None:
        self._call("POST", "/_control", json=knobs)

    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_requests")["requests"]

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """The requests once `predicate(requests)` holds (the server may learn of a close late)."""
        deadline = time.monotonic() + timeout
        while True:
            requests = self.requests()
            if predicate(requests) or time.monotonic() > deadline:
                return requests
            time.sleep(0.02)

    def base_url(self, kind: str) -> str:
        return f"{self.url}/v1" if kind in ("openai", "deepseek", "openai_compatible") else self.url

    def make_model(
        self,
        kind: str = "openai",
        name: str = "fake-model",
        *,
        api_key: str | None = None,
        provider_fields: dict[str, Any] | None = None,
        **model_fields: Any,
    ):
        """A Provider of `kind` pointing at the fake upstream, and a Model `name` on it."""
        from llm.crypto import encrypt
        from llm.models import Model, Provider

        self._providers += 1
        fields: dict[str, Any] = {
            "connect_timeout": 2.0,
            "first_token_timeout": 5.0,
            "idle_timeout": 5.0,
            "total_timeout": 30.0,
            "max_retries": 2,
            **(provider_fields or {}),
        }
        provider = Provider.objects.create(
            name=f"fake-{kind}-{self._providers}",
            kind=kind,
            base_url="" if kind == "demo" else self.base_url(kind),
            api_version=self.api_version if kind == "azure_openai" else "",
            api_key_encrypted=encrypt(api_key if api_key is not None else f"sk-fake-{kind}-0123456789abcdef"),
            **fields,
        )
        model_fields.setdefault("upstream_name", name)
        return Model.objects.create(provider=provider, name=name, **model_fields)


@pytest.fixture(scope="session")
def _fake_upstream_server() -> Iterator[str]:
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
    process = subprocess.Popen(
        [sys.executable, "-m", "fake_upstream", "--port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, process, log)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def fake_upstream(_fake_upstream_server: str, settings: Any) -> FakeUpstream:
    """The fake upstream (one server per session), its knobs and records reset; retries wait ~1ms."""
    settings.LLM_RETRY_BASE_DELAY = 0.001
    upstream = FakeUpstream(_fake_upstream_server)
    upstream.reset()
    return upstream
