"""The errors of the accounts app a client can meet, each with its status and code.

They are DRF exceptions rather than nexus.lib.errors.ApiError: the authentication classes
raise them, and DRF imports those classes while its own views module is still loading,
which nexus.lib.errors imports. The project's exception handler renders both alike.
"""

from __future__ import annotations

from rest_framework import exceptions


class ServiceUnavailable(exceptions.APIException):
    """The cache cannot be asked (the token denylist, the throttles): refuse rather than guess."""

    status_code = 503
    default_code = "service_unavailable"
    default_detail = "Sign-in cannot be checked right now; try again shortly."


class TooManyAttempts(exceptions.Throttled):
    """429 with Retry-After (the handler names it `rate_limited`)."""

    default_detail = "Too many attempts; try again later."


class LastAdmin(exceptions.APIException):
    status_code = 409
    default_code = "last_admin"
    default_detail = "This is the last active admin: make someone else an admin first."
