"""Seed data of the accounts app: the superuser from the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

from accounts.models import User, normalize_email


def seed(*, demo: bool = False) -> Iterator[str]:
    email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "").strip()
    password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
    if not (email and password):
        yield "accounts: DJANGO_SUPERUSER_EMAIL/DJANGO_SUPERUSER_PASSWORD not set, no superuser created."
        return
    if User.objects.filter(email=normalize_email(email)).exists():
        yield f"accounts: superuser {email} exists, left as it is."
        return
    User.objects.create_superuser(email, password)
    yield f"accounts: superuser {email} created."
