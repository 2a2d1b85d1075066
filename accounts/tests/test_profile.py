"""GET/PATCH/DELETE /users/me: the caller's own account."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import ApiKey, AuditEvent, Role, User
from accounts.selectors import user_role
from accounts.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_me_shows_the_callers_account_with_its_role(client_for, alice):
    body = client_for(alice).get("/users/me").json()
    assert body == {
        "id": alice.pk,
        "email": "alice@example.com",
        "nickname": "",
        "role": "user",
        "created_at": body["created_at"],
    }


def test_me_needs_a_token(api):
    response = api.get("/users/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_the_nickname_changes_freely(client_for, alice):
    response = client_for(alice).patch("/users/me", {"nickname": "Al"})
    assert response.status_code == 200
    assert response.json()["nickname"] == "Al"


def test_the_email_changes_only_with_the_current_password(client_for, alice):
    client = client_for(alice)
    refused = client.patch("/users/me", {"email": "alice2@example.com"})
    assert refused.status_code == 400
    assert set(refused.json()["error"]["fields"]) == {"password"}
    wrong = client.patch("/users/me", {"email": "alice2@example.com", "password": "not-it"})
    assert wrong.status_code == 400
    response = client.patch("/users/me", {"email": "Alice2@Example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json()["email"] == "alice2@example.com"
    event = AuditEvent.objects.get(action="user.email_changed")
    assert event.metadata["from"] == "alice@example.com"


def test_the_email_cannot_take_someone_elses(client_for, alice, bob):
    response = client_for(alice).patch("/users/me", {"email": "BOB@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"email"}


def test_a_user_cannot_raise_their_own_role_here(client_for, alice):
    client = client_for(alice)
    for field, value in (("role", "admin"), ("is_staff", True), ("is_superuser", True)):
        response = client.patch("/users/me", {field: value})
        assert response.status_code == 403
    alice.refresh_from_db()
    assert user_role(alice) == "user"
    assert not alice.is_staff
    assert not alice.is_superuser
    assert client.get("/users/me").json()["role"] == "user"


def test_delete_needs_the_password(client_for, alice):
    client = client_for(alice)
    assert client.delete("/users/me", {}).status_code == 400
    response = client.delete("/users/me", {"password": "wrong"})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"password"}
    assert User.objects.filter(pk=alice.pk).exists()


def test_delete_removes_the_account_and_what_it_owns(client_for, alice, bob):
    services.api_key_create(user=alice, name="script")
    services.api_key_create(user=bob, name="other")
    client = client_for(alice)
    client.patch("/users/me", {"nickname": "gone soon"})
    response = client.delete("/users/me", {"password": PASSWORD})
    assert response.status_code == 204
    assert not User.objects.filter(pk=alice.pk).exists()
    assert not ApiKey.objects.filter(name="script").exists()
    assert ApiKey.objects.filter(name="other").exists()
    assert client.get("/users/me").status_code == 401


def test_deleted_accounts_keep_their_audit_events_with_the_email(client_for, alice):
    alice_id = alice.pk
    client = client_for(alice)  # a login.succeeded event by alice
    client.delete("/users/me", {"password": PASSWORD})
    login = AuditEvent.objects.get(action="login.succeeded")
    assert login.actor is None
    assert login.metadata["actor_email"] == "alice@example.com"
    deleted = AuditEvent.objects.get(action="user.deleted")
    assert deleted.target == f"user:{alice_id}"
    assert deleted.metadata["email"] == "alice@example.com"


def test_the_last_admin_cannot_delete_their_account(client_for, admin, make_user):
    client = client_for(admin)
    response = client.delete("/users/me", {"password": PASSWORD})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_admin"
    make_user("second-admin@example.com", role=Role.ADMIN)
    assert client.delete("/users/me", {"password": PASSWORD}).status_code == 204
