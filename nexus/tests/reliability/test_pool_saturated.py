"""A server whose every pooled connection is busy says so: 503 `busy` with Retry-After, not
"the database is unavailable" while PostgreSQL is up (nexus/lib/database_health.py).

The pool's timeout is raised by psycopg_pool and wrapped by Django, as a checkout that waited
DATABASE_POOL_TIMEOUT raises it; the middleware is the one that answers every view."""

from __future__ import annotations

import json

import psycopg
from django.db import OperationalError
from django.http import HttpResponse
from django.test import RequestFactory
from psycopg_pool import PoolTimeout

from nexus.middleware import ErrorEnvelopeMiddleware


def _answer(exception: Exception) -> HttpResponse:
    middleware = ErrorEnvelopeMiddleware(lambda request: HttpResponse())
    response = middleware.process_exception(RequestFactory().get("/users/me"), exception)
    assert response is not None
    return response  # type: ignore[return-value]


def _wrapped(cause: Exception) -> OperationalError:
    try:
        raise OperationalError(str(cause)) from cause
    except OperationalError as exc:
        return exc


def test_a_checkout_that_found_every_connection_busy_is_a_busy_503_to_retry_soon():
    response = _answer(_wrapped(PoolTimeout("couldn't get a connection after 10.00 sec")))
    assert response.status_code == 503
    assert json.loads(response.content)["error"]["code"] == "busy"
    assert response["Retry-After"] == "1"


def test_a_refused_connection_is_still_the_database_being_unavailable():
    response = _answer(_wrapped(psycopg.OperationalError("connection refused")))
    assert response.status_code == 503
    assert json.loads(response.content)["error"]["code"] != "busy"
    assert "database" in json.loads(response.content)["error"]["message"].lower()
