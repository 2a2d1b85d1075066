"""Settings come from the environment, and a bad value stops Nexus at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from nexus.lib.env import env_bool, env_choice, env_int, env_list, env_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "Yes", "on"])
def test_booleans_accept_the_usual_words_for_true(monkeypatch, raw):
    monkeypatch.setenv("NEXUS_FLAG", raw)
    assert env_bool("NEXUS_FLAG", "false") is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "NO", "off"])
def test_booleans_accept_the_usual_words_for_false(monkeypatch, raw):
    monkeypatch.setenv("NEXUS_FLAG", raw)
    assert env_bool("NEXUS_FLAG", "true") is False


def test_a_default_is_parsed_like_a_value():
    assert env_bool("NEXUS_UNSET_FLAG", "yes") is True
    assert env_int("NEXUS_UNSET_NUMBER", "20") == 20
    assert env_list("NEXUS_UNSET_LIST", "a, b,,c ") == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("reader", "raw"),
    [
        (lambda: env_bool("NEXUS_BAD", "true"), "maybe"),
        (lambda: env_int("NEXUS_BAD", "1"), "twenty"),
        (lambda: env_int("NEXUS_BAD", "1", minimum=0), "-3"),
        (lambda: env_choice("NEXUS_BAD", "text", ("text", "json")), "xml"),
        (lambda: env_url("NEXUS_BAD", "", schemes=("redis",)), "http://example.com"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(monkeypatch, reader, raw):
    monkeypatch.setenv("NEXUS_BAD", raw)
    with pytest.raises(ImproperlyConfigured, match="NEXUS_BAD"):
        reader()


def run_check(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "DEBUG"}}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_bad_variable_stops_the_process_with_its_name():
    result = run_check(DEBUG="true", AI_CALLS_PER_MINUTE="lots")
    assert result.returncode != 0
    assert "AI_CALLS_PER_MINUTE" in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = run_check(DEBUG="false", ALLOWED_HOSTS="nexus.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_starts_with_a_secret_key():
    result = run_check(DEBUG="false", SECRET_KEY="x" * 60, ALLOWED_HOSTS="nexus.example.com")
    assert result.returncode == 0, result.stderr


def test_pooled_postgresql_connections_are_checked_before_a_request_gets_one(settings):
    # Without the check, each connection a PostgreSQL restart left in the pool failed one
    # request after PostgreSQL was back (nexus/tests/reliability/test_faults.py).
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


def test_without_redis_the_embedded_cache_and_channel_layer_are_used():
    environment = {
        key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DATABASE_URL"}
    }
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='nexus.settings'; django.setup();"
        "from django.conf import settings as s;"
        "print(s.CACHES['default']['BACKEND'], s.CHANNEL_LAYERS['default']['BACKEND'],"
        " s.DATABASES['default']['ENGINE'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.core.cache.backends.locmem.LocMemCache",
        "channels.layers.InMemoryChannelLayer",
        "django.db.backends.sqlite3",
    ]
