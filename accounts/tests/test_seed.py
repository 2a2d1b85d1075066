"""`manage.py seed`: the superuser with the admin role, and the demo user; safe to re-run."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from accounts.selectors import user_role

pytestmark = pytest.mark.django_db


def run_seed(*args: str) -> str:
    out = StringIO()
    call_command("seed", *args, stdout=out)
    return out.getvalue()


def test_the_superuser_gets_the_admin_role(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "Root@Example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "Root-Password-Long-1")
    assert "created" in run_seed()
    root = User.objects.get(email="root@example.com")
    assert root.is_superuser and root.is_staff
    assert user_role(root) == "admin"
    assert list(root.groups.values_list("name", flat=True)) == ["admin"]
    assert root.password.startswith("argon2")
    assert "left as it is" in run_seed()
    assert User.objects.count() == 1


def test_without_the_variables_no_superuser_is_made(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_EMAIL", raising=False)
    assert "not set" in run_seed()
    assert not User.objects.exists()


def test_demo_creates_a_demo_user_and_prints_its_password_once(monkeypatch):
    monkeypatch.delenv("DEMO_USER_PASSWORD", raising=False)
    output = run_seed("--demo")
    password = output.split("password: ", 1)[1].split()[0]
    demo = User.objects.get(email="demo@example.com")
    assert demo.check_password(password)
    assert user_role(demo) == "user" and not demo.is_staff
    again = run_seed("--demo")
    assert password not in again
    assert User.objects.filter(email="demo@example.com").count() == 1


def test_the_demo_password_can_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEMO_USER_PASSWORD", "Demo-Password-From-Env-2")
    output = run_seed("--demo")
    assert "Demo-Password-From-Env-2" not in output
    assert User.objects.get(email="demo@example.com").check_password("Demo-Password-From-Env-2")


def test_the_demo_user_is_made_only_with_demo():
    run_seed()
    assert not User.objects.filter(email="demo@example.com").exists()
