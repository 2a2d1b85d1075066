"""Fixtures of the reliability suite: users, their credentials, a snapshot of every row."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services as account_services
from accounts.models import Role, User

PASSWORD = "correct horse battery staple"
# The apps whose rows a refused request must leave alone, with simplejwt's blacklist.
APP_LABELS = ("accounts", "llm", "billing", "chats", "nexus", "token_blacklist")
# Written by authentication itself, whoever the request belongs to: not a change of anyone's object.
VOLATILE_FIELDS = {"last_used_at", "last_login"}


def make_user(email: str, *, role: str = Role.USER) -> User:
    user = User.objects.create_user(email, PASSWORD)
    account_services.user_role_assign(user=user, role=role)
    return user


def jwt_for(user: User) -> str:
    return str(RefreshToken.for_user(user).access_token)


def client_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def rows_snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of the project's tables, by table, volatile fields left out."""
    snapshot: dict[str, list[dict[str, Any]]] = {}
    for label in APP_LABELS:
        if label not in {config.label for config in apps.get_app_configs()}:
            continue
        for model in apps.get_app_config(label).get_models():
            rows = model._default_manager.order_by("pk").values()
            snapshot[model._meta.db_table] = [
                {name: value for name, value in row.items() if name not in VOLATILE_FIELDS} for row in rows
            ]
    return snapshot


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Passwords are beside the point here: hash them cheaply."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
