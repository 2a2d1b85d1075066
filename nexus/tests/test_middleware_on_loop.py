"""Django's middlewares run on the event loop for API requests (nexus.middleware) and still do
all they did: the API's responses carry the security headers, and the admin's session, CSRF
and messages work as Django's own middleware makes them work."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient

from nexus.lib.db_threads import in_thread
from nexus.tests.reliability.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db(transaction=True)


async def test_api_responses_carry_the_security_headers(async_client):
    response = await async_client.get("/v1/models")

    assert response.status_code == 401
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "sessionid" not in response.cookies  # the API keeps no session


async def test_the_admin_signs_in_with_its_session_and_csrf_token():
    await in_thread(make_user)("operator@example.com", role="admin")
    client = AsyncClient(enforce_csrf_checks=True)
    page = await client.get("/admin/login/")
    token = page.cookies["csrftoken"].value

    refused = await client.post("/admin/login/", {"username": "operator@example.com", "password": PASSWORD})
    signed_in = await client.post(
        "/admin/login/?next=/admin/",
        {"username": "operator@example.com", "password": PASSWORD, "csrfmiddlewaretoken": token},
    )

    assert refused.status_code == 403  # no CSRF token: Django's CSRF middleware refused it
    assert signed_in.status_code == 302, signed_in.content[:500]
    assert "sessionid" in signed_in.cookies
    console = await client.get("/admin/")
    assert console.status_code in (200, 302)  # in, or on to the second factor's page
    assert console.get("Location", "/admin/").startswith("/admin/")
    # The admin's sync views ran in the test client's one thread: give its connection back.
    await sync_to_async(connections.close_all)()
