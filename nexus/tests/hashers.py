"""Argon2 at its smallest cost, for tests: the same algorithm and format, a fraction of the time.

Production hashing costs about a tenth of a second on purpose; hundreds of test users
would spend minutes on it.
"""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class CheapArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 8
    parallelism = 1
