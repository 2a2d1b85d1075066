"""POST /auth/login: a token pair for the right credentials, one generic 401 for anything else."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import make_password

from accounts.models import AuditEvent, User
from accounts.tests.conftest import PASSWORD, bearer

pytestmark = pytest.mark.django_db


def test_it_returns_a_token_pair_and_the_user(api, alice):
    response = api.post("/auth/login", {"email": "Alice@Example.com", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "user"}
    assert body["user"]["email"] == "alice@example.com"
    assert body["user"]["role"] == "user"
    me = api.get("/users/me", **bearer(body["access"]))
    assert me.status_code == 200
    alice.refresh_from_db()
    assert alice.last_login is not None


@pytest.mark.parametrize(
    ("email", "password"),
    [("alice@example.com", "wrong-password"), ("nobody@example.com", PASSWORD)],
)
def test_wrong_credentials_get_one_generic_401(api, alice, email, password):
    response = api.post("/auth/login", {"email": email, "password": password})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_credentials"
    assert error["message"] == "The email or password is not correct."
    assert "WWW-Authenticate" in response


def test_an_inactive_user_gets_the_same_401(api, alice):
    alice.is_active = False
    alice.save()
    response = api.post("/auth/login", {"email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The email or password is not correct."


def test_success_and_failure_are_audited_with_ip_and_agent(api, alice):
    api.post("/auth/login", {"email": "alice@example.com", "password": "nope"}, HTTP_USER_AGENT="probe/1")
    api.post("/auth/login", {"email": "alice@example.com", "password": PASSWORD}, HTTP_USER_AGENT="app/2")
    failed = AuditEvent.objects.get(action="login.failed")
    succeeded = AuditEvent.objects.get(action="login.succeeded")
    assert failed.actor == alice
    assert failed.user_agent == "probe/1"
    assert succeeded.actor == alice
    assert succeeded.ip == "127.0.0.1"
    assert succeeded.user_agent == "app/2"


def test_a_failure_for_an_unknown_email_is_audited_without_an_actor(api):
    api.post("/auth/login", {"email": "ghost@example.com", "password": "whatever-it-is"})
    event = AuditEvent.objects.get(action="login.failed")
    assert event.actor is None
    assert event.target == "ghost@example.com"


def test_an_imported_bcrypt_hash_is_accepted_and_upgraded_to_argon2(api):
    user = User.objects.create(
        email="imported@example.com", password=make_password(PASSWORD, hasher="bcrypt_sha256")
    )
    assert user.password.startswith("bcrypt_sha256$")
    response = api.post("/auth/login", {"email": "imported@example.com", "password": PASSWORD})
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.password.startswith("argon2")


def test_a_stale_authorization_header_does_not_stop_login(api, alice):
    response = api.post(
        "/auth/login", {"email": "alice@example.com", "password": PASSWORD}, **bearer("stale.token.here")
    )
    assert response.status_code == 200


def test_missing_fields_are_400(api):
    response = api.post("/auth/login", {"email": "alice@example.com"})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"password"}
