"""Production without a mail server: `check --deploy` names EMAIL_HOST, and no mail, reset
links included, is ever printed into the log. DEBUG keeps the console backend."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from nexus.tests.console.test_deploy_check import PRODUCTION

ROOT = Path(__file__).resolve().parents[2]

BACKEND = (
    "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='nexus.settings'; django.setup();"
    "from django.conf import settings; print(settings.EMAIL_BACKEND)"
)


def _environment(**overrides: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("EMAIL_")}
    environment.update(PRODUCTION, LOG_FORMAT="text", LOG_LEVEL="info", SECURE_SSL_REDIRECT="false")
    environment.pop("EMAIL_HOST", None)
    environment.update(overrides)
    return environment


def _run(arguments: list[str], **overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=_environment(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deploy_check_refuses_production_without_a_mail_server_naming_email_host():
    result = _run(["manage.py", "check", "--deploy"])

    assert result.returncode != 0
    assert "nexus.E001" in result.stderr and "EMAIL_HOST is not set" in result.stderr


def test_the_deploy_check_passes_once_email_host_is_set():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "ERROR"], EMAIL_HOST="smtp.example.com")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "nexus.E001" not in result.stdout + result.stderr


def test_production_without_a_mail_server_never_uses_the_console_backend():
    result = _run(["-c", BACKEND])

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "nexus.lib.unconfigured_mail.UnconfiguredEmailBackend"


def test_debug_without_a_mail_server_keeps_the_console_backend():
    result = _run(["-c", BACKEND], DEBUG="true")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.core.mail.backends.console.EmailBackend"


@pytest.mark.django_db
def test_the_unconfigured_backend_refuses_to_send_and_prints_nothing(settings, capsys):
    settings.EMAIL_BACKEND = "nexus.lib.unconfigured_mail.UnconfiguredEmailBackend"

    with pytest.raises(ImproperlyConfigured, match="EMAIL_HOST"):
        mail.send_mail("Reset", "https://nexus.example.com/reset-password?token=abc", None, ["a@example.com"])

    assert "token=abc" not in capsys.readouterr().out


@pytest.mark.django_db
def test_a_reset_request_in_production_without_a_mail_server_prints_no_link(settings, caplog, capfd):
    settings.EMAIL_BACKEND = "nexus.lib.unconfigured_mail.UnconfiguredEmailBackend"
    user = User.objects.create_user("bob@example.com", secrets.token_urlsafe(16))

    response = APIClient().post("/auth/password/reset", {"email": user.email}, format="json")

    assert response.status_code < 300  # the client is told nothing either way, as ever
    assert AuditEvent.objects.filter(action="password.reset_requested", actor=user).exists()
    printed = capfd.readouterr()
    logged = " ".join(record.getMessage() for record in caplog.records)
    for text in (printed.out, printed.err, logged):
        assert "token=" not in text and "/reset-password" not in text
    assert "set EMAIL_HOST" in logged  # the operator learns why nothing went out
