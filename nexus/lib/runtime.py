"""Runtime settings as every process reads them: the operator's overrides over the environment.

    runtime.registration_open()      runtime.default_model()       runtime.max_message_chars()
    runtime.ai_calls_per_minute()    runtime.default_monthly_budget()
    runtime.registrations_per_hour() runtime.title_model()
    runtime.current()                all of them at once (nexus.lib.maintenance reads it too)

The stored row (nexus.models.RuntimeSettings) is cached under one key of the shared cache
(Redis in production), so a read costs one cache round trip and no query. A change is
written by nexus.services, which drops the key at once and, when its transaction commits,
stores the new row there: every process reads the new values on its next request, with no
restart and no per-process copy to go stale. Readers only ever `add` the key (never
overwrite it), so a reader that loaded the row before a change cannot put it back after.

An empty override means the environment's value (django.conf.settings), read live.
This module imports nothing that needs the app registry: billing.money imports it while
the apps load.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.cache import cache

from nexus.lib import snapshot

logger = logging.getLogger(__name__)

CACHE_KEY = "runtime-settings:v1"
snapshot.register(CACHE_KEY)  # read with the process caches' generations, once per request
DEFAULT_MAINTENANCE_MESSAGE = "Nexus is down for maintenance. Please try again later."


@dataclass(frozen=True, slots=True)
class Overrides:
    """The stored row: None (or "") means the environment's value."""

    registration_open: bool | None = None
    default_model: str = ""
    default_monthly_budget: Decimal | None = None
    ai_calls_per_minute: int | None = None
    registrations_per_hour: int | None = None
    max_message_chars: int | None = None
    maintenance_mode: bool = False
    maintenance_message: str = ""
    title_model: str = ""


FIELDS: tuple[str, ...] = tuple(field.name for field in fields(Overrides))
NO_OVERRIDES = Overrides()


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """The values in force."""

    registration_open: bool
    default_model: str
    default_monthly_budget: str  # a decimal as text: billing.money parses and checks it
    ai_calls_per_minute: int
    max_message_chars: int
    maintenance_mode: bool
    maintenance_message: str
    registrations_per_hour: int  # per client address; 0: no limit
    title_model: str  # the model that titles new conversations; "": their first words


def environment_defaults() -> RuntimeConfig:
    """The values of the environment (settings), which the overrides replace."""
    return RuntimeConfig(
        registration_open=bool(settings.REGISTRATION_OPEN),
        default_model=str(settings.DEFAULT_MODEL),
        default_monthly_budget=str(settings.DEFAULT_MONTHLY_BUDGET),
        ai_calls_per_minute=int(settings.AI_CALLS_PER_MINUTE),
        max_message_chars=int(settings.MAX_MESSAGE_CHARS),
        maintenance_mode=False,
        maintenance_message="",
        registrations_per_hour=int(settings.REGISTRATIONS_PER_HOUR),
        title_model="",  # no environment variable: titles by a model cost money, an operator's choice
    )


def resolve(stored: Overrides) -> RuntimeConfig:
    """The overrides over the environment's values."""
    defaults = environment_defaults()
    return RuntimeConfig(
        registration_open=defaults.registration_open
        if stored.registration_open is None
        else stored.registration_open,
        default_model=stored.default_model or defaults.default_model,
        default_monthly_budget=defaults.default_monthly_budget
        if stored.default_monthly_budget is None
        else str(stored.default_monthly_budget),
        ai_calls_per_minute=defaults.ai_calls_per_minute
        if stored.ai_calls_per_minute is None
        else stored.ai_calls_per_minute,
        max_message_chars=stored.max_message_chars or defaults.max_message_chars,
        maintenance_mode=stored.maintenance_mode,
        maintenance_message=stored.maintenance_message,
        registrations_per_hour=defaults.registrations_per_hour
        if stored.registrations_per_hour is None
        else stored.registrations_per_hour,
        title_model=stored.title_model,
    )


def _from_row(row: dict[str, Any] | None) -> Overrides:
    if not row:
        return NO_OVERRIDES
    return Overrides(**{name: row[name] for name in FIELDS if name in row})


def load() -> Overrides:
    """The stored row, from the database."""
    # By name: nexus.lib is imported while the app registry is still loading.
    model = apps.get_model("nexus", "RuntimeSettings")
    return _from_row(model.objects.filter(pk=1).values(*FIELDS).first())


def overrides() -> Overrides:
    """The stored row, from the cache; loaded and cached on a miss."""
    if not apps.ready:  # an app's ready() checking its settings: no database yet
        return NO_OVERRIDES
    found, cached = snapshot.read(CACHE_KEY)
    if found:
        return _from_row(cached)
    try:
        cached = cache.get(CACHE_KEY)
    except Exception:  # the cache is down: the database still answers
        logger.warning("Runtime settings: the cache is unreachable, reading the database", exc_info=True)
        return load()
    if cached is not None:
        return _from_row(cached)
    stored = load()
    try:
        cache.add(CACHE_KEY, asdict(stored), timeout=None)
    except Exception:
        logger.warning("Runtime settings: could not cache them", exc_info=True)
    return stored


def publish(stored: Overrides) -> None:
    """Stores a committed change where every process reads it (called on commit)."""
    snapshot.forget(CACHE_KEY)
    cache.set(CACHE_KEY, asdict(stored), timeout=None)


def forget() -> None:
    """Drops the cached row, so that the next read loads it from the database."""
    snapshot.forget(CACHE_KEY)
    cache.delete(CACHE_KEY)


def current() -> RuntimeConfig:
    return resolve(overrides())


def registration_open() -> bool:
    return current().registration_open


def default_model() -> str:
    return current().default_model


def default_monthly_budget() -> str:
    return current().default_monthly_budget


def ai_calls_per_minute() -> int:
    return current().ai_calls_per_minute


def max_message_chars() -> int:
    return current().max_message_chars


def registrations_per_hour() -> int:
    return current().registrations_per_hour


def title_model() -> str:
    return current().title_model
