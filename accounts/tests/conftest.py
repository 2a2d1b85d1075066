"""Fixtures of the accounts tests: users of each role, and clients signed in as them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Role, User

PASSWORD = "Correct-Horse-Battery-42"


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.default_format = "json"
    return client


@pytest.fixture
def make_user(db) -> Callable[..., User]:
    def make(email: str = "alice@example.com", *, role: str = Role.USER, password: str = PASSWORD, **extra):
        user = User.objects.create_user(email, password, **extra)
        services.user_role_assign(user=user, role=role)
        return user

    return make


@pytest.fixture
def alice(make_user) -> User:
    return make_user("alice@example.com")


@pytest.fixture
def bob(make_user) -> User:
    return make_user("bob@example.com")


@pytest.fixture
def admin(make_user) -> User:
    return make_user("admin@example.com", role=Role.ADMIN)


@pytest.fixture
def login(api) -> Callable[..., dict]:
    """Signs in through the API; returns {access, refresh, user}."""

    def sign_in(email: str, password: str = PASSWORD) -> dict:
        response = api.post("/auth/login", {"email": email, "password": password})
        assert response.status_code == 200, response.content
        return response.json()

    return sign_in


@pytest.fixture
def client_for(login) -> Callable[[User], APIClient]:
    """A fresh client carrying the access token of the given user."""

    def make(user: User) -> APIClient:
        client = APIClient()
        client.default_format = "json"
        client.credentials(**bearer(login(user.email)["access"]))
        return client

    return make
