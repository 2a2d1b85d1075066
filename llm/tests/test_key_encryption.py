"""Provider keys are Fernet-encrypted with NEXUS_ENCRYPTION_KEY, or a key derived from SECRET_KEY."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from llm import crypto


def test_a_key_round_trips_and_is_not_stored_in_clear(settings):
    settings.NEXUS_ENCRYPTION_KEY = ""

    stored = crypto.encrypt("sk-plain")

    assert "sk-plain" not in stored
    assert crypto.decrypt(stored) == "sk-plain"
    assert crypto.encrypt("") == "" and crypto.decrypt("") == ""


def test_without_an_encryption_key_it_follows_the_secret_key(settings):
    settings.NEXUS_ENCRYPTION_KEY = ""
    settings.SECRET_KEY = "one-secret"
    stored = crypto.encrypt("sk-plain")

    settings.SECRET_KEY = "another-secret"

    with pytest.raises(crypto.UndecryptableKey):
        crypto.decrypt(stored)


def test_an_encryption_key_can_be_rotated(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.NEXUS_ENCRYPTION_KEY = old
    stored = crypto.encrypt("sk-plain")

    settings.NEXUS_ENCRYPTION_KEY = f"{new},{old}"

    assert crypto.decrypt(stored) == "sk-plain"
    assert Fernet(new.encode()).decrypt(crypto.encrypt("sk-plain").encode()) == b"sk-plain"


def test_a_malformed_encryption_key_is_refused_with_its_name(settings):
    settings.NEXUS_ENCRYPTION_KEY = "too-short"

    with pytest.raises(ImproperlyConfigured, match="NEXUS_ENCRYPTION_KEY"):
        crypto.encrypt("sk-plain")
