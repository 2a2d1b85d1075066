"""`manage.py createapikey --email --name`: a working key, printed once, audited."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiKey, AuditEvent
from accounts.services import api_key_authenticate
from nexus.tests.console.conftest import make_user

pytestmark = pytest.mark.django_db


def create(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("createapikey", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_the_key_is_printed_alone_and_authenticates_its_owner():
    owner = make_user("script-owner@example.com")
    secret, note = create("--email", "Script-Owner@example.com", "--name", "ci-deploy")
    assert secret.startswith("nx-")
    assert "cannot be shown again" in note
    user, key = api_key_authenticate(key=secret)
    assert (user, key.name, key.expires_at) == (owner, "ci-deploy", None)
    assert secret not in (ApiKey.objects.values_list("digest", flat=True)[0], key.prefix)


def test_the_creation_is_in_the_audit_trail_without_the_secret():
    make_user("script-owner@example.com")
    secret, _ = create("--email", "script-owner@example.com", "--name", "ci-deploy")
    event = AuditEvent.objects.get(action="key.created")
    assert event.metadata["name"] == "ci-deploy"
    assert secret not in str(event.metadata)


def test_an_expiry_can_be_given_in_days():
    make_user("script-owner@example.com")
    create("--email", "script-owner@example.com", "--name", "nightly", "--expires-in-days", "30")
    key = ApiKey.objects.get()
    assert key.expires_at is not None
    assert 29 <= (key.expires_at - key.created_at).days <= 30


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--email", "nobody@example.com", "--name", "x"), "no user"),
        (("--email", "script-owner@example.com", "--name", "  "), "--name"),
        (
            ("--email", "script-owner@example.com", "--name", "x", "--expires-in-days", "0"),
            "--expires-in-days",
        ),
    ],
)
def test_bad_arguments_stop_with_a_sentence_and_no_key(args, message):
    make_user("script-owner@example.com")
    with pytest.raises(CommandError, match=message):
        create(*args)
    assert not ApiKey.objects.exists()


def test_a_deactivated_user_gets_no_key():
    owner = make_user("gone@example.com")
    owner.is_active = False
    owner.save()
    with pytest.raises(CommandError, match="deactivated"):
        create("--email", "gone@example.com", "--name", "x")
