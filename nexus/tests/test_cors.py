"""Browsers on an allowed origin can call Nexus with the official SDKs, preflight and all.

A browser sends a preflight naming every non-simple header of the call it is about to make,
and refuses the call if the answer leaves one out. The OpenAI and Anthropic SDKs add a dozen
headers of their own, so each test below makes the preflight a browser would make for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from django.test import override_settings

ORIGIN = "https://chat.example.com"
MESSAGES: Any = [{"role": "user", "content": "hi"}]  # one list for both SDKs' message types

# Set by the browser itself, never named in a preflight.
BROWSER_OWN_HEADERS = {"host", "connection", "content-length", "accept-encoding"}

# What the JS SDKs send from a page, read from their sources (openai-node and
# anthropic-sdk-typescript: src/client.ts buildHeaders, src/internal/detect-platform.ts).
JS_PLATFORM_HEADERS = [
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-os",
    "x-stainless-arch",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-retry-count",
    "x-stainless-timeout",
]
OPENAI_JS_HEADERS = [
    "authorization",
    "content-type",
    *JS_PLATFORM_HEADERS,
    "x-stainless-helper-method",
    "openai-organization",
    "openai-project",
    "openai-beta",
]
ANTHROPIC_JS_HEADERS = [
    "x-api-key",
    "content-type",
    "user-agent",  # set in browsers too; Firefox sends it and names it in the preflight
    *JS_PLATFORM_HEADERS,
    "x-stainless-helper",
    "x-stainless-helper-method",
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
]
# Nexus's own, and what EventSource sends when it reconnects.
NEXUS_HEADERS = ["last-event-id", "x-nexus-save", "x-request-id", "idempotency-key"]


@pytest.fixture(autouse=True)
def _allowed_origin():
    with override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN]):
        yield


def preflight(client, path: str, headers: Iterable[str], *, origin: str = ORIGIN, method: str = "POST"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": ",".join(sorted(headers)),
        },
    )


def refused_headers(response, requested: Iterable[str]) -> set[str]:
    """The requested headers a browser would find missing from the preflight's answer."""
    allowed = {name.strip().lower() for name in response.get("Access-Control-Allow-Headers", "").split(",")}
    return {name.lower() for name in requested} - allowed


def headers_sent_by(calls: Iterable[Callable[[httpx2.Client], object]]) -> set[str]:
    """The header names the installed Python SDKs send for `calls`, captured before the wire."""
    sent: set[str] = set()

    def answer(request: httpx2.Request) -> httpx2.Response:
        sent.update(name.lower() for name in request.headers)
        return httpx2.Response(400, json={"error": {"type": "invalid_request_error", "message": "no"}})

    for call in calls:
        # The SDK raises on the 400 above, once its request is recorded.
        with (
            httpx2.Client(transport=httpx2.MockTransport(answer)) as http,
            suppress(openai.APIError, anthropic.APIError),
        ):
            call(http)
    return sent - BROWSER_OWN_HEADERS


def openai_client(http: httpx2.Client) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test",
        base_url="https://nexus.test/v1",
        organization="org-test",
        project="proj-test",
        max_retries=0,
        http_client=http,
    )


def anthropic_client(http: httpx2.Client) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-ant-test", base_url="https://nexus.test", max_retries=0, http_client=http
    )


OPENAI_CALLS = [
    lambda http: openai_client(http).chat.completions.create(model="m", messages=MESSAGES, stream=True),
    lambda http: openai_client(http).chat.completions.with_raw_response.create(model="m", messages=MESSAGES),
    lambda http: openai_client(http).chat.completions.stream(model="m", messages=MESSAGES).__enter__(),
]
ANTHROPIC_CALLS = [
    lambda http: anthropic_client(http).messages.create(model="m", max_tokens=8, messages=MESSAGES),
    lambda http: anthropic_client(http).messages.with_raw_response.create(
        model="m", max_tokens=8, messages=MESSAGES
    ),
    lambda http: (
        anthropic_client(http).messages.stream(model="m", max_tokens=8, messages=MESSAGES).__enter__()
    ),
    lambda http: anthropic_client(http).beta.messages.create(
        model="m", max_tokens=8, messages=MESSAGES, betas=["some-beta"]
    ),
]


def test_the_openai_js_sdk_passes_the_preflight_of_a_completion(client):
    response = preflight(client, "/v1/chat/completions", OPENAI_JS_HEADERS)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert refused_headers(response, OPENAI_JS_HEADERS) == set()


def test_the_anthropic_js_sdk_passes_the_preflight_of_a_message(client):
    response = preflight(client, "/v1/messages", ANTHROPIC_JS_HEADERS)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert refused_headers(response, ANTHROPIC_JS_HEADERS) == set()


def test_every_header_the_installed_openai_sdk_sends_is_allowed(client):
    sent = headers_sent_by(OPENAI_CALLS)
    assert {"x-stainless-raw-response", "x-stainless-helper-method", "openai-project"} <= sent
    assert refused_headers(preflight(client, "/v1/chat/completions", sent), sent) == set()


def test_every_header_the_installed_anthropic_sdk_sends_is_allowed(client):
    sent = headers_sent_by(ANTHROPIC_CALLS)
    assert {"anthropic-version", "anthropic-beta", "x-stainless-stream-helper", "x-stainless-timeout"} <= sent
    assert refused_headers(preflight(client, "/v1/messages", sent), sent) == set()


def test_a_resuming_event_source_and_nexus_headers_are_allowed(client):
    response = preflight(client, "/chat/messages/1/stream", ["authorization", *NEXUS_HEADERS], method="GET")
    assert response.status_code == 200
    assert refused_headers(response, NEXUS_HEADERS) == set()


@pytest.mark.parametrize(
    "path",
    ["/auth/login", "/chat/send", "/v1/chat/completions", "/v1/messages", "/dashboard/billing/subscription"],
)
def test_every_api_path_answers_the_preflight(client, path):
    response = preflight(client, path, ["authorization", "content-type"])
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN


def test_the_admin_gives_other_origins_nothing(client):
    response = preflight(client, "/admin/login/", ["content-type"])
    assert "Access-Control-Allow-Origin" not in response


def test_a_page_on_another_origin_gets_no_permission(client):
    response = preflight(client, "/v1/chat/completions", OPENAI_JS_HEADERS, origin="https://evil.example")
    assert "Access-Control-Allow-Origin" not in response


def test_a_page_can_read_the_headers_clients_act_on(client, db):
    response = client.get("/v1/models", headers={"Origin": ORIGIN})
    assert response.status_code == 401  # still answered with CORS headers, so the page sees why
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {name.strip().lower() for name in response["Access-Control-Expose-Headers"].split(",")}
    assert exposed >= {"x-request-id", "retry-after", "x-nexus-conversation-id", "x-nexus-dropped-params"}
