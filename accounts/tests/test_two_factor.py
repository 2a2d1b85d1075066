"""Two-factor sign-in (TOTP on django-otp): enrolment, confirmation with recovery codes, the
API's login asking for the code, the console's login needing it with STAFF_REQUIRE_2FA, and
turning it off. Codes are computed with django-otp's own TOTP function, as an app would."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client, override_settings
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEvent, Role, User
from accounts.tests.conftest import PASSWORD, bearer

pytestmark = pytest.mark.django_db


def time_passes(user: User) -> None:
    """As if the app's next time step had come: django-otp accepts each step once, and pauses
    a device for a second or more after a wrong code."""
    TOTPDevice.objects.filter(user=user).update(last_t=-1, throttling_failure_timestamp=None)
    StaticDevice.objects.filter(user=user).update(throttling_failure_timestamp=None)


def current_code(user: User) -> str:
    """The code the authenticator app shows now (after `time_passes`)."""
    time_passes(user)
    device = TOTPDevice.objects.get(user=user)
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"


def wrong_code(user: User) -> str:
    return f"{(int(current_code(user)) + 1) % 1_000_000:06d}"


def api_login(api, email: str, **extra: str):
    return api.post("/auth/login", {"email": email, "password": PASSWORD, **extra}, REMOTE_ADDR="10.0.0.9")


@pytest.fixture
def enrolled(make_user, client_for):
    """Alice with two-factor sign-in on; returns (alice, her signed-in client, recovery codes)."""
    alice = make_user("alice@example.com")
    client = client_for(alice)
    assert client.post("/users/me/2fa").status_code == 201
    response = client.post("/users/me/2fa/confirm", {"code": current_code(alice)})
    assert response.status_code == 200, response.content
    return alice, client, response.json()["recovery_codes"]


def test_enrolment_gives_an_otpauth_url_and_its_secret_but_asks_no_code_until_confirmed(
    alice, client_for, api
):
    client = client_for(alice)
    response = client.post("/users/me/2fa")
    assert response.status_code == 201
    body = response.json()
    url = urlparse(body["otpauth_url"])
    assert url.scheme == "otpauth" and url.netloc == "totp"
    assert parse_qs(url.query)["secret"] == [body["secret"]]
    assert "alice%40example.com" in body["otpauth_url"]
    assert AuditEvent.objects.filter(action="2fa.enrolment_started", actor=alice).exists()
    assert api_login(api, "alice@example.com").status_code == 200


def test_confirming_with_the_apps_code_turns_it_on_and_shows_ten_recovery_codes(enrolled):
    alice, client, codes = enrolled
    assert len(codes) == 10 and len(set(codes)) == 10
    assert AuditEvent.objects.filter(action="2fa.enabled", actor=alice).count() == 1
    # On already: a second enrolment is refused rather than replacing the app silently.
    response = client.post("/users/me/2fa")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "two_factor_enabled"


def test_confirming_with_a_wrong_code_keeps_it_off(alice, client_for, api):
    client = client_for(alice)
    client.post("/users/me/2fa")
    response = client.post("/users/me/2fa/confirm", {"code": wrong_code(alice)})
    assert response.status_code == 400
    assert "code" in response.json()["error"]["fields"]
    assert AuditEvent.objects.filter(action="2fa.confirm_failed", actor=alice).exists()
    assert api_login(api, "alice@example.com").status_code == 200


def test_login_without_a_code_is_401_otp_required(enrolled, api):
    response = api_login(api, "alice@example.com")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "otp_required"
    assert "access" not in response.json()


def test_login_with_the_current_code_signs_in(enrolled, api):
    alice, _, _ = enrolled
    response = api_login(api, "alice@example.com", otp=current_code(alice))
    assert response.status_code == 200
    assert api.get("/users/me", **bearer(response.json()["access"])).status_code == 200
    event = AuditEvent.objects.filter(action="login.succeeded", actor=alice).latest("created_at")
    assert event.metadata["otp"] == "totp"


def test_a_wrong_code_is_401_audited_and_counted_by_the_login_throttle(enrolled, api):
    alice, _, _ = enrolled
    for _ in range(5):
        response = api_login(api, "alice@example.com", otp=wrong_code(alice))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_otp"
    assert AuditEvent.objects.filter(action="login.otp_failed", actor=alice).count() == 5
    # Five wrong codes are five failures: now even the right code waits.
    response = api_login(api, "alice@example.com", otp=current_code(alice))
    assert response.status_code == 429


def test_a_recovery_code_signs_in_once(enrolled, api):
    alice, _, codes = enrolled
    response = api_login(api, "alice@example.com", otp=codes[0])
    assert response.status_code == 200
    event = AuditEvent.objects.filter(action="login.succeeded", actor=alice).latest("created_at")
    assert event.metadata["otp"] == "recovery_code"
    again = api_login(api, "alice@example.com", otp=codes[0])
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "invalid_otp"
    time_passes(alice)
    assert api_login(api, "alice@example.com", otp=codes[1]).status_code == 200


def test_disabling_needs_the_password_and_a_code_then_login_asks_no_code(enrolled, api):
    alice, client, _ = enrolled
    response = client.delete("/users/me/2fa", {"password": "not-it", "code": current_code(alice)})
    assert response.status_code == 400
    response = client.delete("/users/me/2fa", {"password": PASSWORD, "code": wrong_code(alice)})
    assert response.status_code == 400
    assert AuditEvent.objects.filter(action="2fa.disable_failed", actor=alice).count() == 2
    assert api_login(api, "alice@example.com").status_code == 401

    response = client.delete("/users/me/2fa", {"password": PASSWORD, "code": current_code(alice)})
    assert response.status_code == 204
    assert AuditEvent.objects.filter(action="2fa.disabled", actor=alice).count() == 1
    assert not TOTPDevice.objects.filter(user=alice).exists()
    assert api_login(api, "alice@example.com").status_code == 200


# --- the console ----------------------------------------------------------------------------


def console_login(client: Client, email: str, **extra: str):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": email, "password": PASSWORD, **extra},
        REMOTE_ADDR="10.0.0.8",
    )


@pytest.fixture
def enrolled_operator(make_user, client_for) -> User:
    operator = make_user("ops@example.com", role=Role.ADMIN)
    client = client_for(operator)
    client.post("/users/me/2fa")
    assert client.post("/users/me/2fa/confirm", {"code": current_code(operator)}).status_code == 200
    return operator


@override_settings(STAFF_REQUIRE_2FA=True)
def test_with_the_setting_on_staff_without_2fa_cannot_enter_the_console(make_user):
    make_user("ops@example.com", role=Role.ADMIN)
    client = Client()
    response = console_login(client, "ops@example.com")
    assert response.status_code == 200
    assert b"POST /users/me/2fa" in response.content
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="login.enrolment_required", target="ops@example.com").exists()


@override_settings(STAFF_REQUIRE_2FA=True)
def test_with_the_setting_on_a_session_without_a_code_does_not_open_the_console(make_user):
    operator = make_user("ops@example.com", role=Role.ADMIN)
    client = Client()
    client.force_login(operator)  # a password-only session, from before 2FA was required
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@override_settings(STAFF_REQUIRE_2FA=True)
def test_the_console_login_needs_the_code_and_then_opens_the_console(enrolled_operator):
    client = Client()
    response = console_login(client, "ops@example.com")
    assert response.status_code == 200
    assert b"Enter the code" in response.content
    assert "_auth_user_id" not in client.session

    response = console_login(client, "ops@example.com", otp_token=wrong_code(enrolled_operator))
    assert response.status_code == 200
    assert b"not correct" in response.content
    assert AuditEvent.objects.filter(action="login.otp_failed", target="ops@example.com").count() == 1

    response = console_login(client, "ops@example.com", otp_token=current_code(enrolled_operator))
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    event = AuditEvent.objects.filter(action="login.succeeded", actor=enrolled_operator).latest("created_at")
    assert event.metadata == {"via": "console", "otp": "totp", "actor_email": "ops@example.com"}


@override_settings(STAFF_REQUIRE_2FA=False)
def test_with_the_setting_off_an_account_with_2fa_still_gives_its_code_to_the_console(enrolled_operator):
    client = Client()
    assert console_login(client, "ops@example.com").status_code == 200
    assert "_auth_user_id" not in client.session
    assert (
        console_login(client, "ops@example.com", otp_token=current_code(enrolled_operator)).status_code == 302
    )
