"""A request reads the runtime settings and the process caches' generations in one round trip
to the shared cache (nexus.lib.snapshot), and still sees every change."""

from __future__ import annotations

from collections import Counter

import pytest
from django_redis.cache import RedisCache

from accounts.services import api_key_create
from nexus.lib import runtime, snapshot
from nexus.models import RuntimeSettings
from nexus.tests.reliability.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cache_calls(monkeypatch):
    """Counts the shared cache's reads by every thread, by (method, key) (the reads still run)."""
    calls: Counter[tuple[str, str]] = Counter()
    for method in ("get", "get_many", "add"):
        original = getattr(RedisCache, method)

        def spy(self, key, *args, _original=original, _method=method, **kwargs):
            calls[(_method, key if isinstance(key, str) else ",".join(sorted(key)))] += 1
            return _original(self, key, *args, **kwargs)

        monkeypatch.setattr(RedisCache, method, spy)
    return calls


@pytest.fixture
def caller(fake_upstream):
    fake_upstream.make_model(kind="openai", name="gpt-test")
    user = make_user("snap@example.com")
    _, secret = api_key_create(user=user, name="snap")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def completion(client, caller):
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}
    return client.post("/v1/chat/completions", body, content_type="application/json", **caller)


def test_an_ai_call_reads_the_shared_keys_in_one_round_trip(client, caller, cache_calls):
    completion(client, caller)  # the first call of a process fills its caches
    cache_calls.clear()

    assert completion(client, caller).status_code == 200

    registered = ",".join(sorted(snapshot._keys))
    assert cache_calls[("get_many", registered)] == 1
    one_by_one = {key: count for (method, key), count in cache_calls.items() if method == "get"}
    assert not set(one_by_one) & set(snapshot._keys), one_by_one


def test_a_change_made_in_a_request_is_in_force_in_that_request_and_the_next():
    assert runtime.current().maintenance_mode is False
    token = snapshot.begin()
    try:
        assert runtime.current().maintenance_mode is False  # the snapshot is filled
        RuntimeSettings.objects.update_or_create(pk=1, defaults={"maintenance_mode": True})
        runtime.forget()  # what nexus.services does on a change
        assert runtime.current().maintenance_mode is True
    finally:
        snapshot.end(token)
    assert runtime.current().maintenance_mode is True


def test_work_that_outlives_its_request_stops_reading_its_snapshot(monkeypatch):
    runtime.current()  # the row is in the shared cache
    token = snapshot.begin()
    try:
        assert runtime.current().maintenance_mode is False
        # Another process turns maintenance on; this request's snapshot still says off...
        RuntimeSettings.objects.update_or_create(pk=1, defaults={"maintenance_mode": True})
        runtime.publish(runtime.load())
        current = snapshot._current.get()
        assert current is not None
        current.forgotten.clear()  # (as if the change came from elsewhere)
        assert runtime.current().maintenance_mode is False
        # ...until it is older than a snapshot lives.
        monkeypatch.setattr(snapshot, "SNAPSHOT_SECONDS", 0.0)
        assert runtime.current().maintenance_mode is True
    finally:
        snapshot.end(token)


def test_outside_a_request_every_read_goes_to_the_cache():
    assert snapshot.read(runtime.CACHE_KEY) == (False, None)
