"""NextChat against a live Nexus: its requests replayed byte for byte, and its reading of the answers.

The requests and the reader are in chats/tests/nextchat_requests.py, each traced to NextChat's
source. The model is named like NextChat's default (gpt-4o-mini), so NextChat's own rules
for it apply: it injects its system prompt, sends images, and adds max_tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from accounts.services import api_key_create
from billing.models import UsageRecord
from chats.tests import nextchat_requests as nextchat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

ORIGIN = "https://chat.example.com"


@pytest.fixture
def app(module_server, chat):
    """A Nexus key typed into NextChat's settings, and the models its user picked."""
    chat.upstream.make_model(
        kind="openai",
        name=nextchat.DEFAULT_MODEL,
        context_window=128000,
        max_output_tokens=16384,
        # Input dear enough that one call costs whole cents (NextChat shows the balance in
        # cents), output cheap enough that reserving NextChat's 4000 tokens fits the budget.
        input_price_per_million=Decimal("1000"),
        output_price_per_million=Decimal("1"),
    )
    key, secret = api_key_create(user=chat.user, name="NextChat")
    chat.key, chat.secret = key, secret
    chat.http = httpx.Client(base_url=module_server.url, timeout=10)
    yield chat
    chat.http.close()


def post(app, request: tuple[dict[str, str], dict[str, Any]]) -> nextchat.Seen:
    """Sends one of NextChat's calls as it does and reads the answer as it does."""
    headers, body = request
    with app.http.stream(
        "POST", nextchat.CHAT_PATH, headers=headers, content=nextchat.encode(body)
    ) as response:
        return seen_in(response)


def seen_in(response: httpx.Response) -> nextchat.Seen:
    return nextchat.read_stream(
        response.status_code, response.headers.get("content-type", ""), response.iter_lines()
    )


def upstream_body(app) -> dict[str, Any]:
    return app.upstream.requests()[-1]["body"]


def test_a_default_chat_streams_its_reply_and_ends_with_done(app):
    app.upstream.configure(reply="Hello! How can I help you today?")
    moment = datetime(2026, 7, 6, 14, 19, 2, tzinfo=UTC)
    seen = post(app, nextchat.chat_default(app.secret, "Hi there", now=moment))
    assert seen.error == ""
    assert seen.text == "Hello! How can I help you today?"
    assert seen.done
    upstream = upstream_body(app)
    assert upstream["messages"][0] == {"role": "system", "content": nextchat.system_prompt(now=moment)}
    assert upstream["messages"][-1] == {"role": "user", "content": "Hi there"}
    assert (upstream["temperature"], upstream["top_p"]) == (0.5, 1)
    # NextChat asks a vision model for at least 4000 tokens; OpenAI takes them by the newer name.
    assert upstream["max_completion_tokens"] == 4000
    assert UsageRecord.objects.count() == 1


def test_moved_sliders_reach_the_upstream_with_their_values(app):
    app.upstream.configure(reply="Creative answer")
    seen = post(app, nextchat.chat_sliders(app.secret, "Write a haiku"))
    assert (seen.error, seen.text, seen.done) == ("", "Creative answer", True)
    upstream = upstream_body(app)
    sent = {
        name: upstream.get(name) for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty")
    }
    assert sent == {"temperature": 1.3, "top_p": 0.8, "presence_penalty": 0.5, "frequency_penalty": 0.6}
    assert upstream["max_completion_tokens"] == 8000


def test_an_uploaded_image_reaches_the_upstream_as_an_image_part(app):
    app.upstream.configure(reply="An orange square.")
    image = nextchat.jpeg_data_url()
    seen = post(app, nextchat.chat_with_image(app.secret, "What is in this picture?", [image]))
    assert (seen.error, seen.text, seen.done) == ("", "An orange square.", True)
    content = upstream_body(app)["messages"][-1]["content"]
    assert {"type": "text", "text": "What is in this picture?"} in content
    images = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
    assert images == [image]


def test_the_title_request_gets_the_title_as_json(app):
    history = [
        {"role": "user", "content": "How do I bake sourdough bread at home with a starter?"},
        {"role": "assistant", "content": "Feed the starter, mix, fold, proof overnight, bake hot."},
    ]
    app.upstream.configure(reply="Home Sourdough Baking Basics")
    headers, body = nextchat.topic_request(app.secret, history)
    response = app.http.post(nextchat.CHAT_PATH, headers=headers, content=nextchat.encode(body))
    # openai.ts extractMessage: choices[0].message.content; the title is kept only on a 200.
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Home Sourdough Baking Basics"
    assert upstream_body(app)["messages"][-1] == {"role": "user", "content": nextchat.TOPIC_PROMPT}


def test_the_summary_instruction_stays_last_at_the_upstream(app):
    answer = "Sourdough needs an active starter, a long cold proof and a very hot oven. " * 30
    history = [
        {"role": "user", "content": "Tell me everything about sourdough."},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "And about rye?"},
        {"role": "assistant", "content": answer.replace("Sourdough", "Rye")},
    ]
    assert nextchat.should_summarize(history)  # NextChat would send this call
    app.upstream.configure(reply="The user bakes sourdough and rye.")
    seen = post(app, nextchat.summarize_request(app.secret, history, memory="The user bakes bread."))
    assert (seen.error, seen.text, seen.done) == ("", "The user bakes sourdough and rye.", True)
    messages = upstream_body(app)["messages"]
    assert messages[0] == {"role": "system", "content": nextchat.memory_prompt("The user bakes bread.")}
    assert messages[-1] == {"role": "system", "content": nextchat.SUMMARIZE_PROMPT}
    assert [m["role"] for m in messages[1:-1]] == ["user", "assistant", "user", "assistant"]


def test_a_plugin_tool_call_streams_so_nextchat_can_run_it_and_answer(app):
    app.upstream.configure(
        reply="", tool_calls=[{"name": "getCurrentWeather", "arguments": '{"city": "Paris"}'}]
    )
    request = nextchat.chat_with_plugin(app.secret, "Weather in Paris?")
    seen = post(app, request)
    assert seen.error == "" and seen.done
    assert upstream_body(app)["tools"] == [nextchat.WEATHER_TOOL]
    # One call, as NextChat collects the deltas: an id only on its first, arguments that parse.
    [call] = seen.tool_calls
    assert call["id"] and call["type"] == "function"
    assert call["function"]["name"] == "getCurrentWeather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}  # what finish() runs it with

    app.upstream.configure(reply="It is sunny in Paris.", tool_calls=None)
    seen = post(app, nextchat.plugin_followup(app.secret, request[1], [call], ['{"sky": "sunny"}']))
    assert (seen.error, seen.text, seen.done) == ("", "It is sunny in Paris.", True)
    messages = upstream_body(app)["messages"]
    assert messages[-2]["role"] == "assistant" and messages[-2]["tool_calls"][0]["id"] == call["id"]
    answer = {name: messages[-1].get(name) for name in ("role", "tool_call_id", "content")}
    assert answer == {"role": "tool", "tool_call_id": call["id"], "content": '{"sky": "sunny"}'}


def test_reasoning_shows_as_a_quote_before_the_answer(app):
    app.upstream.make_model(kind="deepseek", name="deepseek-reasoner", supports_reasoning=True)
    app.upstream.configure(reply="Four.", reasoning="Two plus two")
    seen = post(app, nextchat.chat_default(app.secret, "2+2?", model="deepseek-reasoner"))
    assert (seen.error, seen.done) == ("", True)
    assert seen.text == "> Two plus two\n\nFour."


def test_a_call_forwarded_by_nextchats_server_streams_too(app):
    """BASE_URL mode: NextChat's server pipes the browser's body on, chunked, with Accept */*."""
    app.upstream.configure(reply="Proxied hello")
    _, body = nextchat.chat_default(app.secret, "Hi via the proxy")

    def chunked() -> Iterator[bytes]:
        data = nextchat.encode(body)
        yield data[:100]
        yield data[100:]

    with app.http.stream(
        "POST", nextchat.CHAT_PATH, headers=nextchat.proxied_headers(app.secret), content=chunked()
    ) as response:
        assert "content-length" not in response.request.headers
        seen = seen_in(response)
    assert (seen.error, seen.text, seen.done) == ("", "Proxied hello", True)


def test_a_model_nexus_lacks_comes_back_as_an_error_nextchat_shows(app):
    seen = post(app, nextchat.chat_default(app.secret, "Hi", model="gpt-4.1"))
    assert seen.text == "" and not seen.done
    assert "gpt-4.1" in seen.error and "model_not_found" in seen.error


@pytest.fixture(scope="module")
def cors_server(module_servers):
    """Nexus allowing NextChat's origin, for the browser-direct setup (Custom Endpoint)."""
    return module_servers.start(CORS_ALLOWED_ORIGINS=ORIGIN)


@pytest.mark.parametrize(
    ("path", "method"),
    [(nextchat.CHAT_PATH, "POST"), (nextchat.USAGE_PATH, "GET"), (nextchat.SUBSCRIPTION_PATH, "GET")],
)
def test_a_browser_may_send_nextchats_calls_across_origins(app, cors_server, path, method):
    with cors_server.client() as client:
        response = client.options(path, headers=nextchat.browser_preflight(ORIGIN, method))
    assert response.status_code == 200
    assert response.headers.get("access-control-allow-origin") == ORIGIN
    allowed = {
        name.strip().lower() for name in response.headers.get("access-control-allow-headers", "").split(",")
    }
    assert {"authorization", "content-type"} <= allowed


def test_a_streamed_reply_is_readable_across_origins(app, cors_server):
    app.upstream.configure(reply="Cross-origin hello")
    headers, body = nextchat.chat_default(app.secret, "Hi")
    with (
        cors_server.client() as client,
        client.stream(
            "POST", nextchat.CHAT_PATH, headers={**headers, "Origin": ORIGIN}, content=nextchat.encode(body)
        ) as response,
    ):
        assert response.headers.get("access-control-allow-origin") == ORIGIN
        seen = seen_in(response)
    assert (seen.text, seen.done) == ("Cross-origin hello", True)
