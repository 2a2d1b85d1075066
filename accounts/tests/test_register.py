"""POST /auth/register: a new account with the user role, Argon2-hashed, or 400/403."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent, User
from accounts.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_it_creates_a_user_with_the_user_role(api):
    response = api.post(
        "/auth/register", {"email": "  Carol@Example.COM ", "password": PASSWORD, "nickname": "C"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"email", "nickname", "role", "created_at"}
    assert body["email"] == "carol@example.com"
    assert body["role"] == "user"
    assert body["nickname"] == "C"
    user = User.objects.get(email="carol@example.com")
    assert list(user.groups.values_list("name", flat=True)) == ["user"]
    assert not user.is_staff


def test_it_stores_the_password_as_an_argon2_hash(api):
    api.post("/auth/register", {"email": "carol@example.com", "password": PASSWORD})
    user = User.objects.get(email="carol@example.com")
    assert user.password.startswith("argon2$argon2id$")
    assert PASSWORD not in user.password
    assert user.check_password(PASSWORD)


def test_it_never_echoes_the_password(api):
    response = api.post("/auth/register", {"email": "carol@example.com", "password": PASSWORD})
    assert PASSWORD not in response.content.decode()


def test_an_email_taken_in_another_case_creates_no_second_account(api, alice):
    # The answer is that of a new account (accounts/tests/test_registration_privacy.py).
    response = api.post("/auth/register", {"email": "ALICE@example.com", "password": PASSWORD})
    assert response.status_code == 201
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1


def test_a_weak_password_is_400_naming_the_field(api):
    response = api.post("/auth/register", {"email": "carol@example.com", "password": "12345678"})
    assert response.status_code == 400
    assert "password" in response.json()["error"]["fields"]
    assert not User.objects.filter(email="carol@example.com").exists()


def test_a_password_like_the_email_is_refused(api):
    response = api.post(
        "/auth/register", {"email": "carolinexample@example.com", "password": "carolinexample"}
    )
    assert response.status_code == 400
    assert "password" in response.json()["error"]["fields"]


def test_an_invalid_email_is_400(api):
    response = api.post("/auth/register", {"email": "not-an-email", "password": PASSWORD})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"email"}


def test_registration_closed_by_setting_is_403(api, settings):
    settings.REGISTRATION_OPEN = False
    response = api.post("/auth/register", {"email": "carol@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "registration_closed"
    assert not User.objects.filter(email="carol@example.com").exists()


def test_a_stale_token_does_not_stop_registration(api):
    api.credentials(HTTP_AUTHORIZATION="Bearer expired.or.garbage")
    response = api.post("/auth/register", {"email": "carol@example.com", "password": PASSWORD})
    assert response.status_code == 201


def test_registration_is_audited(api):
    response = api.post("/auth/register", {"email": "carol@example.com", "password": PASSWORD})
    event = AuditEvent.objects.get(action="user.registered")
    assert response.status_code == 201
    assert event.actor_id == User.objects.get(email="carol@example.com").pk
