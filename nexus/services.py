"""Writes of the operator's console that belong to no single app.

- `runtime_settings_update`: change runtime settings; audited, effective on every process.
- `models_set_enabled`, `providers_set_enabled`: the admin's enable/disable actions, audited
  here because llm knows nothing of users or the audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import User
from accounts.services import audit_event_record
from llm.models import Model, Provider
from llm.selectors import routes
from nexus.lib import runtime
from nexus.lib.errors import ApiError
from nexus.models import SINGLETON_ID, RuntimeSettings

logger = logging.getLogger(__name__)

AnyRequest = HttpRequest | Request


def _json_value(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _validation_error(exc: ValidationError) -> ApiError:
    fields = exc.message_dict
    message = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in fields.items())
    return ApiError(message, code="invalid", param=next(iter(fields), None), fields=fields)


def runtime_settings_get() -> RuntimeSettings:
    """The stored row, created empty (every value from the environment) on first use."""
    row, _ = RuntimeSettings.objects.get_or_create(pk=SINGLETON_ID)
    return row


@transaction.atomic
def runtime_settings_update(
    *, actor: User | None, changes: dict[str, Any], request: AnyRequest | None = None
) -> runtime.RuntimeConfig:
    """Applies `changes` (field: value; None or "" puts back the environment's value).

    Validated like the model (400 with `fields`); the default model must exist. One audit
    event `settings.changed` lists each changed setting with its old and new value in
    force. When the transaction commits, every process reads the new values.
    """
    unknown = sorted(set(changes) - set(runtime.FIELDS))
    if unknown:
        raise ApiError(
            f"Unknown settings: {', '.join(unknown)}.",
            code="invalid",
            param=unknown[0],
            fields={name: ["Not a runtime setting."] for name in unknown},
        )
    runtime_settings_get()
    row = RuntimeSettings.objects.select_for_update().get(pk=SINGLETON_ID)
    before_stored = runtime.load()
    for name, value in changes.items():
        if value is None and name in ("default_model", "maintenance_message", "title_model"):
            value = ""
        setattr(row, name, value)
    try:
        row.full_clean()
    except ValidationError as exc:
        raise _validation_error(exc) from None
    if row.default_model and not Model.objects.filter(name=row.default_model).exists():
        message = f"There is no model named {row.default_model!r}."
        raise ApiError(message, code="invalid", param="default_model", fields={"default_model": [message]})
    if row.title_model and not Model.objects.filter(name=row.title_model).exists():
        message = f"There is no model named {row.title_model!r}."
        raise ApiError(message, code="invalid", param="title_model", fields={"title_model": [message]})
    row.save()
    after_stored = runtime.load()
    before, after = runtime.resolve(before_stored), runtime.resolve(after_stored)
    changed = {
        name: {"old": _json_value(getattr(before, name)), "new": _json_value(getattr(after, name))}
        for name in runtime.FIELDS
        if getattr(before_stored, name) != getattr(after_stored, name)
    }
    if changed:
        audit_event_record(
            action="settings.changed",
            actor=actor,
            target="runtime-settings",
            request=request,
            metadata={"changes": changed},
        )
    # Dropped now, so that no process serves the old row from the cache; stored again once
    # committed, for everyone. If the cache cannot be told, the change is not made: other
    # processes would go on reading the old values from it.
    try:
        runtime.forget()
    except Exception:
        raise ApiError(
            "The settings cannot be changed while the cache (Redis) is unreachable; nothing was changed.",
            code="service_unavailable",
            status_code=503,
        ) from None
    transaction.on_commit(lambda: _publish_quietly(after_stored))
    return after


def _publish_quietly(stored: runtime.Overrides) -> None:
    """The cached row was dropped before the commit, so a failure here only costs the next
    reader a query."""
    try:
        runtime.publish(stored)
    except Exception:
        logger.warning("Runtime settings: could not cache the new values", exc_info=True)


def _set_enabled(
    *,
    rows: Iterable[Model | Provider],
    enabled: bool,
    kind: str,
    actor: User | None,
    request: AnyRequest | None,
) -> int:
    changed = 0
    for row in rows:
        if row.enabled == enabled:
            continue
        type(row).objects.filter(pk=row.pk).update(enabled=enabled)
        routes.invalidate()  # update() sends no signal
        row.enabled = enabled
        audit_event_record(
            action=f"{kind}.{'enabled' if enabled else 'disabled'}",
            actor=actor,
            target=f"{kind}:{row.pk}",
            request=request,
            metadata={"name": row.name},
        )
        changed += 1
    return changed


@transaction.atomic
def models_set_enabled(
    *, models: Iterable[Model], enabled: bool, actor: User | None, request: AnyRequest | None = None
) -> int:
    """Enables or disables models (a disabled one is refused to callers at once); the count changed."""
    return _set_enabled(rows=models, enabled=enabled, kind="model", actor=actor, request=request)


@transaction.atomic
def providers_set_enabled(
    *, providers: Iterable[Provider], enabled: bool, actor: User | None, request: AnyRequest | None = None
) -> int:
    """Enables or disables providers and so all their models; the count changed."""
    return _set_enabled(rows=providers, enabled=enabled, kind="provider", actor=actor, request=request)
