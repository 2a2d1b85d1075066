"""ProcessCache: rows kept in a process until any process changes them."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import override_settings

from nexus.lib.process_cache import ProcessCache


class Loads:
    """A loader that counts its calls and returns the value it is set to."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return self.value


pytestmark = pytest.mark.django_db(transaction=True)


def test_a_value_is_loaded_once_while_nothing_changes():
    rows, load = ProcessCache[str, str]("test-once"), Loads("a")
    assert [rows.get("k", load) for _ in range(5)] == ["a"] * 5
    assert load.count == 1


def test_a_change_made_by_another_process_is_seen_at_the_next_read():
    here, elsewhere = ProcessCache[str, str]("test-shared"), ProcessCache[str, str]("test-shared")
    load = Loads("old")
    assert here.get("k", load) == "old"

    load.value = "new"
    elsewhere.invalidate()  # another process's cache of the same rows: only the shared token is common

    assert here.get("k", load) == "new"
    assert load.count == 2


def test_a_change_is_announced_again_when_its_transaction_commits():
    rows, load = ProcessCache[str, str]("test-commit"), Loads("old")
    with transaction.atomic():
        rows.invalidate()
        token_inside = cache.get(rows.key)
        # Between the first announcement and the commit a reader loads the old rows...
        assert ProcessCache[str, str]("test-commit").get("k", load) == "old"
    # ...and drops them at the commit's announcement.
    assert cache.get(rows.key) != token_inside
    load.value = "new"
    assert rows.get("k", load) == "new"


def test_a_load_that_began_before_a_change_is_not_kept_after_it():
    """A slow reader that read the old row must not store it where readers of the new
    generation look: that kept a revoked key or a disabled model alive for a minute."""
    rows = ProcessCache[str, str]("test-race")
    assert rows.get("k", Loads("old")) == "old"
    rows.invalidate()  # the generation the slow reader will begin in
    started, release = threading.Event(), threading.Event()

    def slow_old_read() -> str:
        started.set()
        release.wait(5)
        return "old"  # read before the change committed

    slow = threading.Thread(target=rows.get, args=("k", slow_old_read))
    slow.start()
    assert started.wait(5)
    cache.set(rows.key, "changed-elsewhere", timeout=None)  # another process commits a change
    assert rows.get("k", Loads("new")) == "new"  # a reader of the new generation
    release.set()
    slow.join(5)

    assert rows.get("k", Loads("newer")) == "new"


def test_nothing_read_inside_a_transaction_is_kept():
    rows, load = ProcessCache[str, str]("test-atomic"), Loads("a")
    with transaction.atomic():
        rows.get("k", load)
        rows.get("k", load)
    assert load.count == 2


def test_entries_expire_after_their_maximum_age(monkeypatch):
    rows, load = ProcessCache[str, str]("test-age", max_age=30), Loads("a")
    clock = [1000.0]
    monkeypatch.setattr("nexus.lib.process_cache.time.monotonic", lambda: clock[0])
    rows.get("k", load)
    clock[0] += 29
    rows.get("k", load)
    clock[0] += 2
    rows.get("k", load)
    assert load.count == 2


@override_settings(
    CACHES={
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
)
def test_without_the_shared_cache_every_read_goes_to_the_database():
    rows, load = ProcessCache[str, str]("test-down"), Loads("a")
    assert rows.get("k", load) == "a"
    assert rows.get("k", load) == "a"
    assert load.count == 2
    rows.invalidate()  # cannot announce it: logged, not raised


def test_a_model_disabled_by_the_console_is_refused_at_the_next_call():
    from llm.models import Model, Provider
    from llm.selectors import route_get
    from llm.types import UnknownModel
    from nexus.services import models_set_enabled, providers_set_enabled

    provider = Provider.objects.create(name="p", kind="openai", base_url="https://api.example.com/v1")
    gpt = Model.objects.create(provider=provider, name="gpt", upstream_name="gpt")
    route_get(name="gpt")  # kept by this process

    models_set_enabled(models=[gpt], enabled=False, actor=None)  # a queryset update: no signal
    with pytest.raises(UnknownModel):
        route_get(name="gpt")

    models_set_enabled(models=[gpt], enabled=True, actor=None)
    route_get(name="gpt")
    providers_set_enabled(providers=[provider], enabled=False, actor=None)
    with pytest.raises(UnknownModel):
        route_get(name="gpt")
