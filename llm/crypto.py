"""Provider API keys at rest: Fernet encryption with settings.NEXUS_ENCRYPTION_KEY.

NEXUS_ENCRYPTION_KEY holds one Fernet key, or several separated by commas to rotate:
the first encrypts, all of them decrypt. When it is empty, a key is derived from
SECRET_KEY (HKDF-SHA256), so changing SECRET_KEY then makes stored keys unreadable.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_HKDF_INFO = b"nexus provider api keys"


class UndecryptableKey(ValueError):
    """A stored key no longer decrypts: the encryption key (or SECRET_KEY) changed."""


def _derived_key(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"nexus.llm.crypto", info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


@functools.cache
def _fernet(configured: str, secret_key: str) -> MultiFernet:
    keys = [key.strip() for key in configured.split(",") if key.strip()]
    if not keys:
        return MultiFernet([Fernet(_derived_key(secret_key))])
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "NEXUS_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64-encoded bytes). Make one with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'."
        ) from None


def fernet() -> MultiFernet:
    return _fernet(settings.NEXUS_ENCRYPTION_KEY, settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    """The stored form of an API key; the empty key stays empty."""
    if not plaintext:
        return ""
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableKey(
            "The stored API key cannot be decrypted with the current NEXUS_ENCRYPTION_KEY "
            "(or SECRET_KEY): set the key again in the admin."
        ) from None
