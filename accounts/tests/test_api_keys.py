"""/keys and /keys/{id}: the caller's API keys, shown in full once, stored as a hash."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from accounts import services
from accounts.models import ApiKey, AuditEvent
from accounts.tests.conftest import bearer

pytestmark = pytest.mark.django_db


def test_a_new_key_is_shown_once_and_stored_as_a_hash(client_for, alice):
    client = client_for(alice)
    response = client.post("/keys", {"name": "laptop"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "prefix",
        "key",
        "created_at",
        "expires_at",
        "allowed_models",
        "allowed_networks",
    }
    secret = body["key"]
    assert secret.startswith("nx-")
    assert len(secret) >= 3 + 43  # 32 random bytes, url-safe base64
    assert secret.startswith(body["prefix"])
    key = ApiKey.objects.get(pk=body["id"])
    assert key.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {str(value) for value in vars(key).values()}

    listed = client.get("/keys").json()
    assert secret not in str(listed)
    assert listed["results"][0] == {
        "id": key.pk,
        "name": "laptop",
        "prefix": body["prefix"],
        "created_at": body["created_at"],
        "last_used_at": None,
        "expires_at": None,
        "revoked": False,
        "allowed_models": [],
        "allowed_networks": [],
    }


def test_keys_are_all_different(alice):
    secrets = {services.api_key_create(user=alice, name=str(n))[1] for n in range(20)}
    assert len(secrets) == 20


def test_an_expiry_must_lie_ahead(client_for, alice):
    client = client_for(alice)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = client.post("/keys", {"name": "old", "expires_at": past})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"expires_at"}
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    assert client.post("/keys", {"name": "new", "expires_at": future}).status_code == 201


def test_a_user_sees_only_their_own_keys(client_for, alice, bob):
    services.api_key_create(user=bob, name="bobs")
    services.api_key_create(user=alice, name="alices")
    names = [key["name"] for key in client_for(alice).get("/keys").json()["results"]]
    assert names == ["alices"]


def test_user_a_gets_404_for_user_bs_key(client_for, alice, bob):
    key, _ = services.api_key_create(user=bob, name="bobs")
    client = client_for(alice)
    assert client.get(f"/keys/{key.pk}").status_code == 404
    assert client.patch(f"/keys/{key.pk}", {"name": "mine now"}).status_code == 404
    assert client.delete(f"/keys/{key.pk}").status_code == 404
    key.refresh_from_db()
    assert key.name == "bobs" and key.revoked_at is None


def test_a_key_can_be_renamed(client_for, alice):
    key, _ = services.api_key_create(user=alice, name="old")
    response = client_for(alice).patch(f"/keys/{key.pk}", {"name": "new"})
    assert response.status_code == 200
    assert response.json()["name"] == "new"


def test_delete_revokes_at_once_and_the_key_stays_listed(client_for, alice):
    key, _ = services.api_key_create(user=alice, name="ci")
    client = client_for(alice)
    assert client.delete(f"/keys/{key.pk}").status_code == 204
    assert client.delete(f"/keys/{key.pk}").status_code == 204  # again: nothing more happens
    assert client.get("/keys").json()["results"][0]["revoked"] is True
    events = AuditEvent.objects.filter(action="key.revoked")
    assert events.count() == 1
    assert events[0].metadata["prefix"] == key.prefix


def test_key_creation_is_audited_by_prefix_only(client_for, alice):
    secret = client_for(alice).post("/keys", {"name": "ci"}).json()["key"]
    event = AuditEvent.objects.get(action="key.created")
    assert event.actor == alice
    assert event.metadata["prefix"] == secret[:12]
    assert secret not in str(event.metadata) + event.target


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/keys"), ("post", "/keys"), ("get", "/users/me"), ("patch", "/users/me"), ("get", "/users")],
)
def test_an_api_key_is_no_credential_for_keys_profile_or_admin(api, admin, method, path):
    _, secret = services.api_key_create(user=admin, name="script")
    response = getattr(api, method)(path, {"name": "x"} if method != "get" else None, **bearer(secret))
    assert response.status_code == 401


def test_an_api_key_cannot_manage_a_key_by_id(api, alice):
    key, secret = services.api_key_create(user=alice, name="script")
    assert api.delete(f"/keys/{key.pk}", **bearer(secret)).status_code == 401
    key.refresh_from_db()
    assert key.revoked_at is None
