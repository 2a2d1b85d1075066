"""Password hashers that take a slot first: at most PASSWORD_HASH_CONCURRENCY hashes at once
per process.

Argon2 at Django's cost needs about 100 MiB for each hash in progress; twenty simultaneous
logins took a process past a gigabyte and starved /health. Every hash (a login's check, the
dummy hash of an unknown email, a new password) waits up to PASSWORD_HASH_WAIT seconds for a
slot, then gives up with 503 `busy` and Retry-After. The slot is taken inside the hasher, so
no path that hashes can forget it, and an unknown email waits exactly as a known one does.
PASSWORD_HASH_CONCURRENCY = 0 lifts the bound (the benchmark's "off").
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.contrib.auth import hashers
from django.core.signals import setting_changed
from rest_framework import exceptions

RETRY_AFTER_SECONDS = 1


class HashingBusy(exceptions.APIException):
    """503 `busy`: every hashing slot of this process stayed taken for PASSWORD_HASH_WAIT."""

    status_code = 503
    default_code = "busy"
    default_detail = "The server is busy signing other people in; try again in a moment."

    def __init__(self) -> None:
        super().__init__()
        self.wait = RETRY_AFTER_SECONDS  # DRF's handler turns `wait` into Retry-After


_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


class _Held(threading.local):
    """How deep this thread is in hashing: PBKDF2's and bcrypt's verify() call encode()
    themselves, and that inner call must not wait for a second slot."""

    depth = 0


_held = _Held()


def _semaphore(concurrency: int) -> threading.BoundedSemaphore:
    global _slots
    with _lock:
        if _slots is None or _slots[0] != concurrency:
            _slots = (concurrency, threading.BoundedSemaphore(concurrency))
        return _slots[1]


def _reset(**kwargs: Any) -> None:
    global _slots
    if kwargs.get("setting") == "PASSWORD_HASH_CONCURRENCY":
        with _lock:
            _slots = None


setting_changed.connect(_reset)


@contextmanager
def hashing_slot() -> Iterator[None]:
    """Holds one of the process's hashing slots; raises HashingBusy when none frees in time."""
    concurrency = int(settings.PASSWORD_HASH_CONCURRENCY)
    if concurrency <= 0 or _held.depth:
        _held.depth += 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    semaphore = _semaphore(concurrency)
    if not semaphore.acquire(timeout=float(settings.PASSWORD_HASH_WAIT)):
        raise HashingBusy()
    _held.depth = 1
    try:
        yield
    finally:
        _held.depth = 0
        semaphore.release()


class BoundedHashing:
    """Mixed into a Django hasher: encode() and verify() run inside a hashing slot."""

    def encode(self, password: str, salt: str, *args: Any, **kwargs: Any) -> str:
        with hashing_slot():
            return super().encode(password, salt, *args, **kwargs)  # type: ignore[misc]

    def verify(self, password: str, encoded: str) -> bool:
        with hashing_slot():
            return super().verify(password, encoded)  # type: ignore[misc]


class BoundedArgon2PasswordHasher(BoundedHashing, hashers.Argon2PasswordHasher):
    pass


class BoundedBCryptSHA256PasswordHasher(BoundedHashing, hashers.BCryptSHA256PasswordHasher):
    pass


class BoundedPBKDF2PasswordHasher(BoundedHashing, hashers.PBKDF2PasswordHasher):
    pass
