"""The audit trail: recorded by services, append-only, and read by admins at /system/audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import RequestFactory

from accounts import services
from accounts.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_an_event_takes_ip_and_agent_from_the_request(alice):
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="curl/8")
    event = services.audit_event_record(
        action="model.disabled", actor=alice, target="model:gpt", request=request, metadata={"why": "cost"}
    )
    event.refresh_from_db()
    assert (event.ip, event.user_agent, event.target) == ("203.0.113.9", "curl/8", "model:gpt")
    assert event.metadata == {"why": "cost", "actor_email": "alice@example.com"}


def test_an_event_needs_no_actor_nor_request():
    event = services.audit_event_record(action="settings.changed")
    assert event.actor is None and event.ip is None and event.user_agent == ""


def test_a_malformed_client_address_is_not_stored(alice):
    request = RequestFactory().get("/", REMOTE_ADDR="not-an-ip")
    assert services.audit_event_record(action="x", request=request).ip is None


def test_events_are_append_only(alice):
    event = services.audit_event_record(action="login.succeeded", actor=alice)
    event.action = "something.else"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "login.succeeded"


def test_admins_read_the_trail_newest_first_and_paginated(client_for, admin, alice):
    for n in range(3):
        services.audit_event_record(action=f"test.{n}", actor=alice)
    body = client_for(admin).get("/system/audit", {"page_size": 2}).json()
    assert body["count"] == 4  # and the admin's own login
    assert len(body["results"]) == 2
    first = body["results"][0]
    assert set(first) == {
        "id",
        "created_at",
        "actor",
        "actor_email",
        "action",
        "target",
        "ip",
        "user_agent",
        "metadata",
    }
    assert first["action"] == "login.succeeded"


def test_the_trail_filters_by_actor_action_and_time(client_for, admin, alice, bob):
    old = services.audit_event_record(action="key.created", actor=alice)
    AuditEvent.objects.filter(pk=old.pk).update(created_at=datetime.now(UTC) - timedelta(days=2))
    services.audit_event_record(action="key.created", actor=alice)
    services.audit_event_record(action="key.created", actor=bob)
    services.audit_event_record(action="key.revoked", actor=alice)
    client = client_for(admin)

    def actions(**query):
        return [(e["actor"], e["action"]) for e in client.get("/system/audit", query).json()["results"]]

    assert actions(actor=alice.pk, action="key.created") == [(alice.pk, "key.created")] * 2
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert actions(actor=alice.pk, since=since) == [(alice.pk, "key.revoked"), (alice.pk, "key.created")]
    assert actions(action="key.created", until=since) == [(alice.pk, "key.created")]


def test_a_bad_filter_is_400(client_for, admin):
    response = client_for(admin).get("/system/audit", {"since": "yesterday", "actor": "x"})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"since", "actor"}


def test_users_cannot_read_the_trail(client_for, alice):
    assert client_for(alice).get("/system/audit").status_code == 403
