"""POST /auth/register tells nobody whether an email has an account, and is throttled per
address: the password is judged first, an existing email answers as a new one (its owner is
mailed instead), and an address past `registrations_per_hour` gets 429."""

from __future__ import annotations

import pytest
from django.core import mail

from accounts.models import AuditEvent, User
from accounts.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def register(api, email: str, password: str = PASSWORD, ip: str = "10.0.0.1", nickname: str = "N"):
    return api.post(
        "/auth/register", {"email": email, "password": password, "nickname": nickname}, REMOTE_ADDR=ip
    )


def shape(response) -> tuple[int, set[str], str, str]:
    body = response.json()
    return response.status_code, set(body), body["email"], body["role"]


def test_an_existing_email_gets_the_answer_a_new_one_gets(api, alice):
    existing = register(api, "ALICE@example.com")
    new = register(api, "carol@example.com", ip="10.0.0.2")
    assert shape(existing) == (201, {"email", "nickname", "role", "created_at"}, "alice@example.com", "user")
    assert shape(new) == (201, {"email", "nickname", "role", "created_at"}, "carol@example.com", "user")
    assert existing.json()["nickname"] == new.json()["nickname"] == "N"


def test_an_existing_email_changes_nothing_and_its_owner_is_told(api, alice):
    password_before = User.objects.get(pk=alice.pk).password
    register(api, "alice@example.com", password="Another-Good-Passphrase-7")
    alice.refresh_from_db()
    assert alice.password == password_before
    assert alice.nickname != "N"
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1
    assert [message.to for message in mail.outbox] == [["alice@example.com"]]
    assert "tried to sign up" in mail.outbox[0].subject
    assert "Another-Good-Passphrase-7" not in mail.outbox[0].body
    assert AuditEvent.objects.filter(action="user.register_existing", actor=alice).count() == 1


def test_a_new_email_gets_no_such_mail(api):
    register(api, "carol@example.com")
    assert mail.outbox == []


def test_a_weak_password_is_refused_alike_for_an_existing_email_and_a_new_one(api, alice):
    existing = register(api, "alice@example.com", password="12345678")
    new = register(api, "carol@example.com", password="12345678")
    assert existing.status_code == new.status_code == 400
    assert existing.json()["error"]["fields"].keys() == new.json()["error"]["fields"].keys() == {"password"}
    assert mail.outbox == []


def test_registrations_are_throttled_per_address(api, settings):
    settings.REGISTRATIONS_PER_HOUR = 3
    for n in range(3):
        assert register(api, f"user{n}@example.com").status_code == 201
    response = register(api, "user9@example.com")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert not User.objects.filter(email="user9@example.com").exists()
    # Another address still registers.
    assert register(api, "user9@example.com", ip="10.0.0.2").status_code == 201


def test_attempts_on_existing_emails_count_toward_the_throttle(api, alice, settings):
    settings.REGISTRATIONS_PER_HOUR = 2
    assert register(api, "alice@example.com").status_code == 201
    assert register(api, "alice@example.com").status_code == 201
    assert register(api, "alice@example.com").status_code == 429
    assert len(mail.outbox) == 2


def test_a_forged_forwarded_address_does_not_dodge_the_registration_throttle(api, settings):
    settings.REGISTRATIONS_PER_HOUR = 1
    assert register(api, "user1@example.com").status_code == 201
    response = api.post(
        "/auth/register",
        {"email": "user2@example.com", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.50",
    )
    assert response.status_code == 429


def test_zero_registrations_per_hour_means_no_limit(api, settings):
    settings.REGISTRATIONS_PER_HOUR = 0
    for n in range(12):
        assert register(api, f"user{n}@example.com").status_code == 201
