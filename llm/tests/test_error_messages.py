"""A provider's error text never reaches a client: each code has Nexus's own message, and the
provider's words go to the log only, with credentials blotted out."""

from __future__ import annotations

import json
import logging

import openai
import pytest
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import RefreshToken

from llm.providers.base import redact
from llm.tests.conftest import run
from llm.tests.test_upstream_errors import STATUSES

# What a careless provider (or a proxy in front of it) might say when it fails.
LEAKY = (
    "db error: could not connect to postgres://nexus:hunter2pass@10.0.3.7:5432/billing; "
    "retry via https://ops:s3cretpw@internal.example.net/v1 with Authorization: Bearer abcdef0123456789xyz "
    "and key sk-proj-AAAABBBBCCCCDDDD1234 (api_key=QWERTY987654)"
)
SECRETS = ("hunter2pass", "s3cretpw", "abcdef0123456789xyz", "sk-proj-AAAABBBBCCCCDDDD1234", "QWERTY987654")
# Words of the provider's text that only it could have written.
PROVIDER_WORDS = ("db error", "10.0.3.7", "internal.example.net", "billing")


def _leaks(text: str) -> list[str]:
    return [word for word in (*SECRETS, *PROVIDER_WORDS) if word in text]


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "code", "answered"), STATUSES)
def test_each_code_has_nexuss_own_message_and_none_of_the_providers_text(
    fake_upstream, status, code, answered
):
    fake_upstream.configure(error_status=status, error_message=LEAKY)
    fake_upstream.make_model(kind="openai", name="m", provider_fields={"max_retries": 0})

    failure = run("m").failure

    assert failure.code == code
    assert _leaks(failure.message) == [] and _leaks(str(failure)) == []
    assert "m" in failure.message  # it says which model failed, in Nexus's words
    # The detail keeps what an operator needs, without the credentials.
    assert "db error" in failure.detail and "10.0.3.7" in failure.detail
    assert [secret for secret in SECRETS if secret in failure.detail] == []


@pytest.mark.django_db
def test_a_failure_mid_stream_says_nothing_of_the_providers_words(fake_upstream):
    # The fake's Anthropic error event says "Overloaded"; Nexus says it its own way.
    fake_upstream.configure(reply="one two three four", stream_error_after=2)
    fake_upstream.make_model(kind="anthropic", name="m", provider_fields={"max_retries": 0})

    failure = run("m").failure

    assert failure.code == "upstream_unavailable"
    assert "Overloaded" not in failure.message
    assert "Overloaded" in failure.detail


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("connect to postgres://u:p4ssw0rd@db.internal:5432/x failed", "p4ssw0rd"),
        ("see https://user:pass1234@api.example.com/v1", "pass1234"),
        ("redis://:onlypassword99@cache:6379/0", "onlypassword99"),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
            "eyJzdWIiOiIx",
        ),
        ("Bearer abcdefghij0123456789", "abcdefghij0123456789"),
        ("invalid key sk-ant-api03-abcdefghijklmnop", "abcdefghijklmnop"),
        ("invalid key sk-0123456789abcdef", "0123456789abcdef"),
        ("GET /v1beta/models?key=AIzaSyA0123456789abcdefghijklmnop", "AIzaSyA0123456789"),
        ('{"api_key": "plaintext-secret-value"}', "plaintext-secret-value"),
        ("password=correcthorse&user=x", "correcthorse"),
        ("an nx-0123456789abcdefghij key of Nexus", "nx-0123456789abcdefghij"),
    ],
)
def test_credentials_in_any_usual_shape_are_redacted(text, hidden):
    redacted = redact(text)

    assert hidden not in redacted
    assert "[redacted]" in redacted


def test_redaction_leaves_ordinary_text_alone():
    text = "The model is overloaded; see https://status.example.com/incidents/42 for details."

    assert redact(text) == text


# --- On the surfaces --------------------------------------------------------------------------


@pytest.fixture
def leaky_model(fake_upstream, transactional_db):
    fake_upstream.configure(error_status=503, error_message=LEAKY)
    fake_upstream.make_model(kind="openai", name="leaky", provider_fields={"max_retries": 0})
    user = get_user_model().objects.create_user("erin@example.com", "correct horse battery staple")
    return str(RefreshToken.for_user(user).access_token)


@pytest.mark.django_db(transaction=True)
async def test_the_sse_error_event_has_nexuss_message_and_the_log_the_redacted_detail(
    async_client, leaky_model, caplog
):
    caplog.set_level(logging.WARNING, logger="chats.turn")
    response = await async_client.post(
        "/chat/send",
        {"message": "hi", "model": "leaky"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {leaky_model}"},
    )
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()

    error = next(
        json.loads(line.removeprefix("data: "))
        for block in body.split("\n\n")
        if "event: error" in block
        for line in block.splitlines()
        if line.startswith("data: ")
    )["error"]
    assert error["code"] == "upstream_unavailable"
    assert _leaks(error["message"]) == [] and _leaks(body) == []
    logged = [record.getMessage() for record in caplog.records if record.name == "chats.turn"]
    assert any("db error" in line and "10.0.3.7" in line for line in logged), logged
    assert not [line for line in logged for secret in SECRETS if secret in line]


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_the_openai_surface_answers_with_nexuss_message(module_server, leaky_model):
    client = openai.OpenAI(base_url=f"{module_server.url}/v1", api_key=leaky_model, max_retries=0, timeout=10)

    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(
                model="leaky", messages=[{"role": "user", "content": "hi"}], stream=stream
            )
        assert raised.value.status_code == 502
        assert _leaks(raised.value.response.text) == []
        assert "leaky" in raised.value.response.json()["error"]["message"]
