"""Failed logins are throttled per address and account (the 6th in 15 minutes is a 429), with a
cap per address; never per email alone, so nobody locks another person out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from freezegun import freeze_time

from accounts.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


WRONG = "wrong-password"


def attempt(api, email, password=WRONG, ip="10.0.0.1"):
    return api.post("/auth/login", {"email": email, "password": password}, REMOTE_ADDR=ip)


def test_the_sixth_failure_is_answered_429_with_retry_after(api, alice):
    for _ in range(5):
        assert attempt(api, "alice@example.com").status_code == 401
    response = attempt(api, "alice@example.com")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 15 * 60


def test_once_throttled_even_the_right_password_waits(api, alice):
    for _ in range(5):
        attempt(api, "alice@example.com")
    assert attempt(api, "alice@example.com", PASSWORD).status_code == 429


def test_failures_for_an_account_from_other_addresses_do_not_lock_it_out(api, alice):
    for n in range(5):
        for _ in range(5):
            attempt(api, "alice@example.com", ip=f"10.0.1.{n}")
    assert attempt(api, "alice@example.com", ip="10.0.1.0").status_code == 429
    assert attempt(api, "alice@example.com", PASSWORD, ip="10.0.2.1").status_code == 200


def test_failures_count_per_address_across_emails_up_to_its_cap(api, alice, settings):
    for n in range(settings.LOGIN_FAILURES_PER_ADDRESS):
        assert attempt(api, f"user{n % 4}@example.com", ip="10.0.3.1").status_code == 401
    assert attempt(api, "alice@example.com", PASSWORD, ip="10.0.3.1").status_code == 429
    assert attempt(api, "alice@example.com", PASSWORD, ip="10.0.3.2").status_code == 200


def test_successful_logins_are_not_counted(api, alice):
    for _ in range(8):
        assert attempt(api, "alice@example.com", PASSWORD).status_code == 200


def test_the_throttle_lifts_after_its_window(api, alice):
    for _ in range(5):
        attempt(api, "alice@example.com")
    assert attempt(api, "alice@example.com", PASSWORD).status_code == 429
    with freeze_time(datetime.now(UTC) + timedelta(minutes=16), tick=True):
        assert attempt(api, "alice@example.com", PASSWORD).status_code == 200


def test_password_reset_requests_are_throttled_whether_or_not_the_account_exists(api, alice):
    for n, email in enumerate(("alice@example.com", "ghost@example.com")):
        for _ in range(5):
            response = api.post("/auth/password/reset", {"email": email}, REMOTE_ADDR=f"10.9.{n}.1")
            assert response.status_code == 202
        response = api.post("/auth/password/reset", {"email": email}, REMOTE_ADDR="10.9.9.9")
        assert response.status_code == 429
        assert "Retry-After" in response
    assert len(mail.outbox) == 5


def test_without_a_client_address_failures_still_count_per_account(api, alice):
    for _ in range(5):
        assert attempt(api, "alice@example.com", ip="").status_code == 401
    assert attempt(api, "alice@example.com", PASSWORD, ip="").status_code == 429
