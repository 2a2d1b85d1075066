"""Password change (ends every session) and reset by mail (a link that works once)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.core import mail
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import AuditEvent
from accounts.tests.conftest import PASSWORD, bearer

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Brand-New-Passphrase-77"


def test_a_change_needs_the_current_password(api, login, alice):
    pair = login("alice@example.com")
    response = api.post(
        "/users/me/password",
        {"old_password": "wrong", "new_password": NEW_PASSWORD},
        **bearer(pair["access"]),
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"old_password"}


def test_a_weak_new_password_is_refused(api, login, alice):
    pair = login("alice@example.com")
    response = api.post(
        "/users/me/password", {"old_password": PASSWORD, "new_password": "password"}, **bearer(pair["access"])
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"new_password"}


def test_a_change_revokes_every_refresh_token_and_keeps_this_client_signed_in(api, login, alice):
    this, other = login("alice@example.com"), login("alice@example.com")
    response = api.post(
        "/users/me/password",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        **bearer(this["access"]),
    )
    assert response.status_code == 200
    fresh = response.json()
    assert set(fresh) == {"access", "refresh"}

    revoked = OutstandingToken.objects.filter(user=alice, blacklistedtoken__isnull=False).count()
    assert revoked == 2
    for old in (this, other):
        assert api.post("/auth/refresh", {"refresh": old["refresh"]}).status_code == 401
        assert api.get("/users/me", **bearer(old["access"])).status_code == 401
    assert api.get("/users/me", **bearer(fresh["access"])).status_code == 200
    assert api.post("/auth/refresh", {"refresh": fresh["refresh"]}).status_code == 200

    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert alice.password.startswith("argon2")
    assert AuditEvent.objects.filter(action="password.changed", actor=alice).exists()


def reset_link() -> tuple[str, str, str]:
    assert len(mail.outbox) == 1
    found = re.search(r"https?://\S+", str(mail.outbox[0].body))
    assert found is not None
    link = found.group(0)
    query = parse_qs(urlparse(link).query)
    return link, query["uid"][0], query["token"][0]


def test_a_reset_is_202_for_an_unknown_email_and_sends_nothing(api):
    response = api.post("/auth/password/reset", {"email": "ghost@example.com"})
    assert response.status_code == 202
    assert mail.outbox == []


def test_a_reset_mails_a_link_to_the_frontend(api, alice, settings):
    settings.FRONTEND_URL = "https://chat.example.com/"
    response = api.post("/auth/password/reset", {"email": "ALICE@example.com"})
    assert response.status_code == 202
    link, _, _ = reset_link()
    assert link.startswith("https://chat.example.com/reset-password?uid=")
    assert mail.outbox[0].to == ["alice@example.com"]
    assert AuditEvent.objects.filter(action="password.reset_requested", actor=alice).exists()


def test_an_inactive_account_gets_no_reset_mail(api, alice):
    alice.is_active = False
    alice.save()
    assert api.post("/auth/password/reset", {"email": "alice@example.com"}).status_code == 202
    assert mail.outbox == []


def test_the_reset_link_sets_the_password_once(api, login, alice):
    session = login("alice@example.com")
    api.post("/auth/password/reset", {"email": "alice@example.com"})
    _, uid, token = reset_link()
    payload = {"uid": uid, "token": token, "new_password": NEW_PASSWORD}
    assert api.post("/auth/password/reset/confirm", payload).status_code == 204
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert BlacklistedToken.objects.filter(token__user=alice).count() == 1
    assert api.post("/auth/refresh", {"refresh": session["refresh"]}).status_code == 401
    assert AuditEvent.objects.filter(action="password.reset", actor=alice).exists()

    again = api.post("/auth/password/reset/confirm", payload | {"new_password": "Yet-Another-One-88"})
    assert again.status_code == 400
    assert set(again.json()["error"]["fields"]) == {"token"}
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


@pytest.mark.parametrize(
    ("uid", "token"), [("garbage", "1-2"), ("", "x"), ("MTIzNDU2", "abc-def"), ("!!!", "x")]
)
def test_a_bad_reset_link_is_400(api, alice, uid, token):
    response = api.post(
        "/auth/password/reset/confirm", {"uid": uid, "token": token, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 400


def test_a_reset_refuses_a_weak_password(api, alice):
    api.post("/auth/password/reset", {"email": "alice@example.com"})
    _, uid, token = reset_link()
    response = api.post("/auth/password/reset/confirm", {"uid": uid, "token": token, "new_password": "123"})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"new_password"}
