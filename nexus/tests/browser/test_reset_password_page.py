"""The link in the password-reset mail opens a page Nexus serves itself (FRONTEND_URL's default),
which sets the new password, and says so plainly when the link or the password will not do."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.conf import settings

from accounts import services as account_services
from accounts.models import User
from nexus.tests.console.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

OLD_PASSWORD = "Old-Reset-Page-Pass-42"
NEW_PASSWORD = "Fresh-Reset-Page-Pass-43"


@pytest.fixture
def member(transactional_db) -> User:
    return make_user("forgetful@example.com", password=OLD_PASSWORD)


def mailed_path(user: User) -> str:
    """The path and query of the link the reset mail carries, to open on the live server."""
    link = account_services.password_reset_link(user=user)
    assert link.startswith(f"{settings.FRONTEND_URL.rstrip('/')}/reset-password?uid=")
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def signs_in(module_server, password: str) -> bool:
    with module_server.client() as http:
        response = http.post("/auth/login", json={"email": "forgetful@example.com", "password": password})
    return response.status_code == 200


def test_the_default_frontend_url_is_nexus_itself():
    assert settings.FRONTEND_URL == "http://127.0.0.1:8000"  # so the link opens the page below


def test_the_mailed_link_opens_a_page_that_sets_the_new_password(
    anonymous_page, module_server, member, screenshot
):
    path = mailed_path(member)
    response = anonymous_page.goto(path)
    assert response is not None and response.status == 200
    screenshot(anonymous_page, "form")
    anonymous_page.fill("#new-password", NEW_PASSWORD)
    anonymous_page.fill("#new-password-again", NEW_PASSWORD)
    anonymous_page.click("button[type=submit]")
    assert "Sign in with your new password" in anonymous_page.locator("#reset-done").inner_text()
    screenshot(anonymous_page, "done")
    assert signs_in(module_server, NEW_PASSWORD)
    assert not signs_in(module_server, OLD_PASSWORD)

    # The link works once: the password it was made for is gone.
    response = anonymous_page.goto(path)
    assert response is not None and response.status == 400
    assert "not valid" in anonymous_page.locator("#reset-link-error").inner_text()
    screenshot(anonymous_page, "used-link")


def test_a_mangled_link_says_it_does_not_work_and_offers_no_form(anonymous_page, member, screenshot):
    path = mailed_path(member)
    response = anonymous_page.goto(path[:-3] + "xyz")
    assert response is not None and response.status == 400
    assert "not valid" in anonymous_page.locator("#reset-link-error").inner_text()
    assert anonymous_page.locator("#reset-form").count() == 0
    screenshot(anonymous_page, "bad-link")
    response = anonymous_page.goto("/reset-password")  # no uid, no token
    assert response is not None and response.status == 400
    assert anonymous_page.locator("#reset-link-error").is_visible()


def test_a_weak_password_is_refused_with_the_reason_and_the_form_stays(
    anonymous_page, module_server, member, screenshot
):
    anonymous_page.goto(mailed_path(member))
    anonymous_page.fill("#new-password", "12345678")
    anonymous_page.fill("#new-password-again", "12345678")
    anonymous_page.click("button[type=submit]")
    errors = anonymous_page.locator("#reset-errors").inner_text()
    screenshot(anonymous_page, "weak")
    assert "too common" in errors and "entirely numeric" in errors
    assert anonymous_page.locator("#reset-form").is_visible()
    # Nothing changed (asked of the database: signing in would end the link, made for the
    # last login's time too).
    member.refresh_from_db()
    assert member.check_password(OLD_PASSWORD)

    anonymous_page.fill("#new-password", NEW_PASSWORD)
    anonymous_page.fill("#new-password-again", NEW_PASSWORD + "!")
    anonymous_page.click("button[type=submit]")
    assert "not the same" in anonymous_page.locator("#reset-errors").inner_text()

    anonymous_page.fill("#new-password", NEW_PASSWORD)
    anonymous_page.fill("#new-password-again", NEW_PASSWORD)
    anonymous_page.click("button[type=submit]")
    assert anonymous_page.locator("#reset-done").is_visible()
    assert signs_in(module_server, NEW_PASSWORD)


def test_the_form_is_refused_without_its_csrf_token(anonymous_page, module_server, member):
    parts = urlsplit(account_services.password_reset_link(user=member))
    query = dict(pair.split("=", 1) for pair in parts.query.split("&"))
    with module_server.client() as http:
        response = http.post(
            "/reset-password",
            data={**query, "new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD},
        )
    assert response.status_code == 403
    member.refresh_from_db()
    assert member.check_password(OLD_PASSWORD)
