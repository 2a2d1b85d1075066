"""No password, token or API key reaches the logs, whatever happens to a request."""

from __future__ import annotations

import logging
import re

import pytest
from django.core import mail

from accounts.tests.conftest import PASSWORD, bearer

pytestmark = [pytest.mark.django_db, pytest.mark.urls("accounts.tests.urls")]

NEW_PASSWORD = "Fresh-Logged-Passphrase-31"


def everything_logged(caplog) -> str:
    return "\n".join(
        f"{record.getMessage()} {record.args!r} {vars(record)!r} {record.exc_text or ''}"
        for record in caplog.records
    )


def test_no_secret_appears_in_the_logs(api, caplog, settings):
    for name in ("", "django.request", "django.security", "rest_framework_simplejwt", "accounts"):
        caplog.set_level(logging.DEBUG, logger=name)
    secrets: list[str] = [PASSWORD, NEW_PASSWORD, "Wrong-Guess-For-Sure-1"]

    api.post("/auth/register", {"email": "dana@example.com", "password": PASSWORD})
    api.post("/auth/register", {"email": "dana@example.com", "password": "short"})
    api.post("/auth/login", {"email": "dana@example.com", "password": "Wrong-Guess-For-Sure-1"})
    pair = api.post("/auth/login", {"email": "dana@example.com", "password": PASSWORD}).json()
    secrets += [pair["access"], pair["refresh"]]
    auth = bearer(pair["access"])

    key = api.post("/keys", {"name": "ci"}, **auth).json()["key"]
    secrets.append(key)
    api.get("/test/ai/whoami", **bearer(key))
    api.get("/keys", **bearer(key))  # refused: keys are no credential here
    api.get("/test/ai/whoami", **bearer(key[:-4] + "zzzz"))  # unknown key
    api.delete("/keys/1", **auth)
    api.get("/test/ai/whoami", **bearer(key))  # revoked

    rotated = api.post("/auth/refresh", {"refresh": pair["refresh"]}).json()
    api.post("/auth/refresh", {"refresh": pair["refresh"]})  # reuse
    secrets += [rotated["access"], rotated["refresh"]]
    changed = api.post(
        "/users/me/password",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        **bearer(rotated["access"]),
    ).json()
    secrets += [changed["access"], changed["refresh"]]

    api.post("/auth/password/reset", {"email": "dana@example.com"})
    found = re.search(r"token=(\S+)", str(mail.outbox[0].body))
    assert found is not None
    token = found.group(1)
    secrets.append(token)
    api.post("/auth/password/reset/confirm", {"uid": "MQ", "token": token, "new_password": "x"})
    api.post("/auth/logout", {"refresh": changed["refresh"]}, **bearer(changed["access"]))
    api.get("/users/me", **bearer(changed["access"]))

    logged = everything_logged(caplog)
    assert any(record.name == "nexus.http" for record in caplog.records)  # logging was on
    for secret in secrets:
        assert secret not in logged
