"""Two server processes: a change made through one is in force on the other at once."""

from __future__ import annotations

import pytest

from accounts.models import Role
from nexus.tests.console.conftest import jwt_for, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def register(server, email: str):
    with server.client() as client:
        return client.post("/auth/register", json={"email": email, "password": "Long-Enough-Pass-77"})


def test_a_change_on_one_process_is_in_force_on_the_other_without_a_restart(start_server):
    admin = make_user("operator@example.com", role=Role.ADMIN)
    user = make_user("member@example.com")
    first, second = start_server(), start_server()
    assert register(second, "early@example.com").status_code == 201

    with first.client(headers={"Authorization": f"Bearer {jwt_for(admin)}"}) as client:
        response = client.patch(
            "/system/settings",
            json={"registration_open": False, "maintenance_mode": True, "maintenance_message": "Back soon."},
        )
        assert response.status_code == 200, response.text

    refused = register(second, "late@example.com")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "registration_closed"
    with second.client(headers={"Authorization": f"Bearer {jwt_for(user)}"}) as client:
        response = client.post("/chat/send", json={"message": "Hello"})
    assert response.status_code == 503
    assert response.json()["error"] == {
        "type": "service_unavailable_error",
        "code": "maintenance",
        "message": "Back soon.",
        "param": None,
        "fields": None,
    }
    with second.client(headers={"Authorization": f"Bearer {jwt_for(admin)}"}) as client:
        assert client.get("/system/settings").json()["registration_open"] is False
