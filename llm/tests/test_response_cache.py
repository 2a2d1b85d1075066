"""Identical temperature-0 requests to a model with the cache on are replayed, with no upstream call."""

from __future__ import annotations

import pytest

from llm.tests.conftest import ask, run
from llm.types import Finish, Served, Usage

pytestmark = pytest.mark.django_db


def test_a_cache_hit_replays_the_reply_without_calling_the_upstream(fake_upstream, kind):
    fake_upstream.configure(reply="Cached words, replayed.")
    fake_upstream.make_model(kind=kind, name="m", cache_enabled=True)

    first = run("m", ask("Same question", temperature=0))
    second = run("m", ask("Same question", temperature=0))

    assert len(fake_upstream.requests()) == 1
    assert second.text == first.text == "Cached words, replayed."
    assert second.of(Served)[0].cached and not first.of(Served)[0].cached
    assert second.of(Usage) == first.of(Usage)
    assert second.events[-1] == Finish("stop")
    assert len(second.events) > 4  # replayed as a stream, not one lump


def test_the_models_default_temperature_of_zero_counts(fake_upstream):
    fake_upstream.make_model(kind="openai", name="m", cache_enabled=True, default_params={"temperature": 0})

    run("m")
    outcome = run("m")

    assert outcome.of(Served)[0].cached
    assert len(fake_upstream.requests()) == 1


@pytest.mark.parametrize(
    ("cache_enabled", "first", "second"),
    [
        (True, ask("Hi", temperature=0.7), ask("Hi", temperature=0.7)),
        (True, ask("Hi"), ask("Hi")),
        (True, ask("Hi", temperature=0), ask("Hello", temperature=0)),
        (True, ask("Hi", temperature=0), ask("Hi", temperature=0, system="Be brief")),
        (True, ask("Hi", temperature=0), ask("Hi", temperature=0, max_tokens=5)),
        (False, ask("Hi", temperature=0), ask("Hi", temperature=0)),
    ],
    ids=["warm", "no temperature", "other question", "other system prompt", "other limit", "cache off"],
)
def test_it_calls_the_upstream_when_the_request_is_not_cacheable_or_not_the_same(
    fake_upstream, cache_enabled, first, second
):
    fake_upstream.make_model(kind="openai", name="m", cache_enabled=cache_enabled)

    run("m", first)
    outcome = run("m", second)

    assert not outcome.of(Served)[0].cached
    assert len(fake_upstream.requests()) == 2


def test_a_failed_or_cut_reply_is_not_cached(fake_upstream):
    fake_upstream.configure(tokens=5, cut_after=2)
    fake_upstream.make_model(kind="openai", name="m", cache_enabled=True)

    run("m", ask("Hi", temperature=0))
    fake_upstream.configure(cut_after=None)
    outcome = run("m", ask("Hi", temperature=0))

    assert outcome.text == "word1 word2 word3 word4 word5"
    assert not outcome.of(Served)[0].cached
