"""The console's sign-in (/admin/login/) is throttled and audited as the API's login is, on the
same counters: after 5 failures the page answers 429 with Retry-After, and every attempt,
failed, refused or successful, is in the audit trail."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import AuditEvent, Role, User
from accounts.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

WRONG = "wrong-password"


def console_login(client: Client, email: str, password: str = WRONG, ip: str = "10.0.0.1"):
    return client.post(
        "/admin/login/?next=/admin/", {"username": email, "password": password}, REMOTE_ADDR=ip
    )


@pytest.fixture
def operator(make_user) -> User:
    return make_user("ops@example.com", role=Role.ADMIN)


def test_the_sixth_wrong_password_on_the_console_is_429_with_retry_after(operator):
    client = Client()
    for _ in range(5):
        response = console_login(client, "ops@example.com")
        assert response.status_code == 200
        assert b"errornote" in response.content
    response = console_login(client, "ops@example.com")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 15 * 60
    assert b"Too many attempts" in response.content
    # Locked means locked: the right password waits too, and no session is opened.
    response = console_login(client, "ops@example.com", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_every_console_attempt_is_audited(operator):
    client = Client()
    for _ in range(6):
        console_login(client, "ops@example.com", ip="10.0.0.7")
    failed = AuditEvent.objects.filter(action="login.failed", target="ops@example.com")
    assert failed.count() == 5
    assert {event.metadata["via"] for event in failed} == {"console"}
    assert {event.ip for event in failed} == {"10.0.0.7"}
    assert all(event.actor_id == operator.pk for event in failed)
    assert AuditEvent.objects.filter(action="login.throttled", target="ops@example.com").count() == 1


def test_a_successful_console_login_is_audited_and_gives_its_place_back(operator):
    client = Client()
    for _ in range(4):
        console_login(client, "ops@example.com")
    response = console_login(client, "ops@example.com", PASSWORD)
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="login.succeeded")
    assert event.actor_id == operator.pk
    assert event.metadata["via"] == "console"
    # Four failures stay counted; the success was not one.
    assert console_login(Client(), "ops@example.com").status_code == 200
    assert console_login(Client(), "ops@example.com").status_code == 429


def test_the_console_and_the_api_share_one_count(api, operator):
    for _ in range(3):
        api.post("/auth/login", {"email": "ops@example.com", "password": WRONG}, REMOTE_ADDR="10.0.0.1")
    for _ in range(2):
        assert console_login(Client(), "ops@example.com").status_code == 200
    response = api.post(
        "/auth/login", {"email": "ops@example.com", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == 429


def test_a_console_lockout_is_per_address(operator):
    for _ in range(6):
        console_login(Client(), "ops@example.com", ip="10.0.0.66")
    response = console_login(Client(), "ops@example.com", PASSWORD, ip="10.0.0.10")
    assert response.status_code == 302


def test_a_non_staff_account_with_its_right_password_counts_as_a_failure(alice):
    for _ in range(5):
        response = console_login(Client(), "alice@example.com", PASSWORD)
        assert response.status_code == 200
    assert console_login(Client(), "alice@example.com", PASSWORD).status_code == 429
    assert AuditEvent.objects.filter(action="login.failed", actor=alice).count() == 5
    assert not AuditEvent.objects.filter(action="login.succeeded").exists()


def test_the_sign_in_form_itself_is_not_counted(operator):
    client = Client()
    for _ in range(10):
        assert client.get("/admin/login/").status_code == 200
        assert client.post("/admin/login/", {"username": "ops@example.com"}).status_code == 200
    assert console_login(client, "ops@example.com", PASSWORD).status_code == 302


def test_a_live_console_locks_after_the_threshold(start_server, transactional_db):
    User.objects.create_superuser("root@example.com", PASSWORD)
    with start_server().client() as client:
        statuses = []
        for password in [WRONG] * 6 + [PASSWORD]:
            page = client.get("/admin/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert token is not None
            response = client.post(
                "/admin/login/",
                data={"username": "root@example.com", "password": password, "csrfmiddlewaretoken": token[1]},
                headers={"Referer": f"{client.base_url}/admin/login/"},
            )
            statuses.append(response.status_code)
    assert statuses == [200] * 5 + [429, 429]
    assert AuditEvent.objects.filter(action="login.failed", target="root@example.com").count() == 5
