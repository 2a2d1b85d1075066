"""schemathesis against /api/schema on a live server: no 5xx, and no response that breaks the
schema, for an anonymous caller and for a signed-in one.

Every operation of the schema is exercised with a few generated examples each (shrinking
off, a fixed seed), so the run stays within a minute or so. Failures are collected across
operations and reported together. Not in the schema, so not here: the WebSocket /ws/chat
(chats/tests/test_websocket.py), /health and /metrics (nexus/tests), and the admin's HTML.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from accounts.models import Role
from llm.models import Model, Provider
from nexus.tests.reliability.conftest import jwt_for, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

EXAMPLES_PER_OPERATION = 8
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

# Operations whose generated examples would end the caller's session or account midway and
# leave the operations after them with nothing but 401s. They are still exercised, last.
SESSION_ENDING = {"POST /auth/logout", "DELETE /users/me", "POST /users/me/password"}


def exercise(schema: Any, base_url: str, headers: dict[str, str]) -> list[str]:
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the schema has no operations"
    operations.sort(key=lambda operation: operation.label in SESSION_ENDING)

    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=15)
            case.validate_response(response, checks=CHECKS)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # every operation is tried; all are reported
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    return failures


@pytest.fixture
def server(start_server) -> Any:
    # The demo model streams without waiting between words, so generated chats end at once.
    return start_server(LLM_DEMO_TOKEN_DELAY="0")


@pytest.fixture
def schema(server) -> Any:
    response = httpx.get(f"{server.url}/api/schema", params={"format": "json"}, timeout=15)
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


def test_anonymous_callers_get_no_server_error_and_answers_that_keep_the_schema(server, schema):
    failures = exercise(schema, server.url, {})
    assert failures == [], "\n\n".join(failures)


@pytest.fixture
def demo_model() -> Model:
    """The default model, offline, so that generated chats reach the turn and stream a reply."""
    provider = Provider.objects.create(name="demo", kind="demo")
    return Model.objects.create(provider=provider, name="demo", upstream_name="demo", max_output_tokens=16)


def test_signed_in_callers_get_no_server_error_and_answers_that_keep_the_schema(server, schema, demo_model):
    user = make_user("fuzz@example.com")
    failures = exercise(schema, server.url, {"Authorization": f"Bearer {jwt_for(user)}"})
    assert failures == [], "\n\n".join(failures)


def test_admins_get_no_server_error_and_answers_that_keep_the_schema(server, schema, demo_model):
    """The admin-only operations, which answer everyone else 403 before reading anything."""
    make_user("other-admin@example.com", role=Role.ADMIN)  # so no generated change locks admins out
    admin = make_user("fuzz-admin@example.com", role=Role.ADMIN)
    failures = exercise(schema, server.url, {"Authorization": f"Bearer {jwt_for(admin)}"})
    assert failures == [], "\n\n".join(failures)
