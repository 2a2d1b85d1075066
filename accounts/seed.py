"""Seed data of the accounts app: the superuser from the environment, and a demo user.

Idempotent: an account that exists is left as it is (its role and password included).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

from accounts import services
from accounts.models import Role, User, normalize_email

DEMO_EMAIL = "demo@example.com"


def _seed_superuser() -> Iterator[str]:
    email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "").strip()
    password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
    if not (email and password):
        yield "accounts: DJANGO_SUPERUSER_EMAIL/DJANGO_SUPERUSER_PASSWORD not set, no superuser created."
        return
    if User.objects.filter(email=normalize_email(email)).exists():
        yield f"accounts: superuser {email} exists, left as it is."
        return
    user = User.objects.create_superuser(email, password)
    services.user_role_assign(user=user, role=Role.ADMIN)
    yield f"accounts: superuser {email} created, with the admin role."


def _seed_demo_user() -> Iterator[str]:
    if User.objects.filter(email=DEMO_EMAIL).exists():
        yield f"accounts: demo user {DEMO_EMAIL} exists, left as it is."
        return
    given = os.environ.get("DEMO_USER_PASSWORD", "")
    password = given or secrets.token_urlsafe(12)
    user = User.objects.create_user(DEMO_EMAIL, password, nickname="Demo")
    services.user_role_assign(user=user, role=Role.USER)
    if given:
        yield f"accounts: demo user {DEMO_EMAIL} created, with the password from DEMO_USER_PASSWORD."
    else:
        # Printed this once, for the operator who ran the seed; it is stored only as a hash.
        yield f"accounts: demo user {DEMO_EMAIL} created, password: {password}"


def seed(*, demo: bool = False) -> Iterator[str]:
    yield from _seed_superuser()
    if demo:
        yield from _seed_demo_user()
