"""/metrics: Prometheus text, off without a token; HTTP and AI call counters that move."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from chats.tests.conftest import read_events, send

TOKEN = "metrics-token-0123456789abcdef"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client) -> dict[str, float]:
    """The /metrics page as {"name{label=value,...}": value}."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    values = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for item in family.samples:
            labels = ",".join(f"{key}={value}" for key, value in sorted(item.labels.items()))
            values[f"{item.name}{{{labels}}}"] = item.value
    return values


def test_metrics_are_not_found_while_no_token_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer"])
def test_a_missing_or_wrong_token_is_refused_with_401(client, settings, header):
    settings.METRICS_TOKEN = TOKEN
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in response.content.decode()


def test_http_requests_are_counted_by_route_and_status(client, settings, db):
    settings.METRICS_TOKEN = TOKEN
    before = sample("nexus_http_requests_total", method="GET", route="/health", status="200")
    client.get("/health")
    client.get("/chat/conversations/12345")  # 401: by its route, never its raw path
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert sample("nexus_http_requests_total", method="GET", route="/health", status="200") == before + 1
    text = response.content.decode()
    assert 'route="/chat/conversations/<int:conversation_id>",status="401"' in text
    assert "12345" not in text
    assert "nexus_http_request_duration_seconds_bucket" in text


@pytest.mark.django_db(transaction=True)
async def test_a_chat_turn_moves_the_ai_counters(async_client, chat, settings):
    settings.METRICS_TOKEN = TOKEN
    chat.upstream.configure(reply="one two three", token_delay=0.001)
    labels = {"model": "gpt-test"}
    calls = sample("nexus_ai_calls_total", outcome="complete", **labels)
    output_tokens = sample("nexus_ai_tokens_total", direction="output", **labels)
    first_tokens = sample("nexus_ai_time_to_first_token_seconds_count", **labels)
    durations = sample("nexus_ai_call_duration_seconds_count", **labels)
    active = sample("nexus_active_streams")

    events = await read_events(await send(async_client, chat.user_headers, message="Count", model="gpt-test"))
    assert events[-1].event == "done"

    assert sample("nexus_ai_calls_total", outcome="complete", **labels) == calls + 1
    assert sample("nexus_ai_tokens_total", direction="output", **labels) == output_tokens + 3
    assert sample("nexus_ai_tokens_total", direction="input", **labels) > 0
    assert sample("nexus_ai_time_to_first_token_seconds_count", **labels) == first_tokens + 1
    assert sample("nexus_ai_call_duration_seconds_count", **labels) == durations + 1
    assert sample("nexus_active_streams") == active
    page = await sync_to_async(scrape)(Client())
    assert page["nexus_ai_calls_total{model=gpt-test,outcome=complete}"] == calls + 1


@pytest.mark.django_db(transaction=True)
async def test_upstream_errors_are_counted_by_code(async_client, chat):
    chat.upstream.configure(error_status=401)
    events = await read_events(await send(async_client, chat.user_headers, message="Hi", model="gpt-test"))
    assert events[-1].event == "error"
    code = events[-1].data["error"]["code"]
    assert sample("nexus_upstream_errors_total", code=code) >= 1
    assert sample("nexus_ai_calls_total", model="gpt-test", outcome="failed") >= 1
