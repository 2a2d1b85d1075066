"""The audit trail: who did what to which account, from where."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import AuditEvent, User
from nexus.lib.client_address import client_address

# What the services take for the request an action came in: Django's or DRF's.
AnyRequest = HttpRequest | Request


def _http_request(request: AnyRequest) -> HttpRequest:
    return request._request if isinstance(request, Request) else request


def _client_ip(request: AnyRequest) -> str | None:
    # The throttles' derivation (TRUSTED_PROXY_COUNT): a forged X-Forwarded-For is not recorded.
    return client_address(request)


def audit_event_record(
    *,
    action: str,
    actor: User | None = None,
    target: str = "",
    request: AnyRequest | None = None,
    metadata: dict[str, Any] | None = None,
) -> AuditEvent:
    """Appends an event; the actor's email goes into metadata so it outlives the account."""
    if actor is not None and not getattr(actor, "pk", None):
        actor = None  # an anonymous request acts as nobody
    data = dict(metadata or {})
    if actor is not None:
        data.setdefault("actor_email", actor.email)
    return AuditEvent.objects.create(
        actor=actor,
        action=action,
        target=target[:255],
        ip=_client_ip(request) if request is not None else None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:512] if request is not None else "",
        metadata=data,
    )
