"""NextChat against a live Nexus: its requests replayed byte for byte, and its reading of the answers.

The requests and the reader are in chats/tests/nextchat_requests.py, each traced to NextChat's
source. The model is named like NextChat's default (gpt-4o-mini), so NextChat's own rules
for it apply: it injects its system prompt, sends images, and adds max_tokens.

The last part sets NextChat up exactly as README.md's NextChat section says (its environment
is read from there) and replays every default feature through NextChat's server: the chat on
the default model (an alias), the title, the summary, the balance.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from django.db.models import Sum

from accounts.models import User
from accounts.services import api_key_create
from billing import periods
from billing.models import UsageRecord
from billing.services import user_quota_set
from chats.tests import nextchat_requests as nextchat
from llm.catalog import CATALOG
from llm.services import model_alias_create

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


def test_the_balance_is_readable_across_origins(app, cors_server):
    headers, path = nextchat.billing_usage(app.secret, periods.utc_day(periods.now()))
    with cors_server.client() as client:
        usage = client.get(path, headers={**headers, "Origin": ORIGIN})
        subscription = client.get(nextchat.SUBSCRIPTION_PATH, headers={**headers, "Origin": ORIGIN})
    for response in (usage, subscription):
        assert response.status_code == 200
        assert response.headers.get("access-control-allow-origin") == ORIGIN


# --- Set up as the README says, through NextChat's server (BASE_URL) ------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_environment() -> dict[str, str]:
    """NextChat's environment as README.md's NextChat section writes it (its ```sh block)."""
    section = re.search(r"^### NextChat\n.*?^```sh\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)
    assert section, "README.md has no NextChat section with a ```sh block"
    lines = [line for line in section.group(1).splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


CATALOG_NAMES = {model.name for models in CATALOG.values() for model in models}
# Any model may answer to gpt-4o-mini; the README suggests this one.
ALIAS_TARGET = "gpt-5.4-mini"


@pytest.fixture
def readme(module_server, chat):
    """Nexus and NextChat's server set up by the README's steps: the listed models in the
    catalog, NextChat's default an alias of one, a key for NextChat's server, the environment."""
    env = readme_environment()
    # Input dear enough that each call costs cents the balance shows, output cheap enough
    # that reserving NextChat's 4000 tokens fits the budget.
    prices = {"input_price_per_million": Decimal("1000"), "output_price_per_million": Decimal("1")}
    limits = {"context_window": 128000, "max_output_tokens": 16384}
    for name in nextchat.picker(env["CUSTOM_MODELS"]):
        if name != nextchat.DEFAULT_MODEL:
            chat.upstream.make_model(kind="openai", name=name, **limits, **prices)
    target = chat.upstream.make_model(kind="openai", name=ALIAS_TARGET, **limits, **prices)
    model_alias_create(name=nextchat.DEFAULT_MODEL, model=target)
    user_quota_set(user=chat.user, monthly_budget=Decimal("5.00"))
    key, secret = api_key_create(user=chat.user, name="NextChat's server")
    chat.key, chat.secret = key, secret
    chat.env = {**env, "BASE_URL": module_server.url, "OPENAI_API_KEY": secret}
    # A visitor who typed the access code and no key of their own: the shared key is used.
    chat.visitor = nextchat.access_code(env["CODE"])
    chat.http = httpx.Client(timeout=10)
    yield chat
    chat.http.close()


def forwarded(readme, request: tuple[dict[str, str], dict[str, Any]]) -> httpx.Response:
    """A browser's chat call as NextChat's server sends it on: to BASE_URL, with the server's
    headers and the key auth.ts picks, the body read whole (CUSTOM_MODELS is set); a model not
    in CUSTOM_MODELS never leaves NextChat."""
    browser_headers, body = request
    assert not nextchat.server_refuses(readme.env, body["model"]), f"NextChat refuses {body['model']}"
    return readme.http.post(
        nextchat.forwarded_url(readme.env, nextchat.CHAT_PATH),
        headers=nextchat.proxied_headers(nextchat.forwarded_key(readme.env, browser_headers)),
        content=nextchat.encode(body),
    )


def forwarded_stream(readme, request) -> nextchat.Seen:
    response = forwarded(readme, request)
    return nextchat.read_stream(
        response.status_code, response.headers.get("content-type", ""), response.iter_lines()
    )


def balance(readme, browser_key: str) -> tuple[float | None, float | None]:
    """Settings > Account Balance > Check, through NextChat's server."""
    headers, usage_path = nextchat.billing_usage(browser_key, periods.utc_day(periods.now()))
    key = nextchat.forwarded_key(readme.env, headers)
    answers = []
    for path in (usage_path, nextchat.SUBSCRIPTION_PATH):
        response = readme.http.get(
            nextchat.forwarded_url(readme.env, path), headers=nextchat.proxied_headers(key)
        )
        assert response.status_code == 200, response.text  # else "Failed to query usage from openai"
        answers.append(response.json())
    return nextchat.balance_shown(*answers)


def spent_cents(**filters) -> Decimal:
    return UsageRecord.objects.filter(**filters).aggregate(cost=Sum("cost"))["cost"] * 100


def used_shown(cents: Decimal) -> float | None:
    """The dollars NextChat shows as used for a total_usage of `cents`."""
    return nextchat.balance_shown({"total_usage": float(cents)}, {})[0]


HISTORY = [
    {"role": "user", "content": "How do I bake sourdough bread at home with a starter?"},
    {"role": "assistant", "content": "Feed the starter, mix, fold, proof overnight, bake hot."},
]


def test_the_readme_points_nextchat_at_nexus_with_its_models_and_the_balance():
    env = readme_environment()
    assert not env["BASE_URL"].rstrip("/").endswith("/v1")  # NextChat appends v1/... itself
    assert env["OPENAI_API_KEY"].startswith("nx-")
    assert nextchat.balance_query_shown(env)
    assert nextchat.default_model(env) == (nextchat.DEFAULT_MODEL, "OpenAI")
    listed = nextchat.picker(env["CUSTOM_MODELS"])
    # NextChat's own models are hidden; what is left is Nexus's catalog and NextChat's default.
    assert nextchat.DEFAULT_MODEL in listed
    assert set(listed) - {nextchat.DEFAULT_MODEL} <= CATALOG_NAMES
    assert ALIAS_TARGET in CATALOG_NAMES


def test_every_model_nextchat_offers_is_one_nexus_lists(readme):
    client = openai.OpenAI(base_url=readme.env["BASE_URL"] + "/v1", api_key=readme.secret)
    listed = {model.id for model in client.models.list()}
    assert set(nextchat.picker(readme.env["CUSTOM_MODELS"])) <= listed


def test_a_new_chat_on_nextchats_default_model_is_served_by_the_alias(readme):
    readme.upstream.configure(reply="Hello from the alias")
    model, _ = nextchat.default_model(readme.env)

    seen = forwarded_stream(readme, nextchat.chat_default(readme.visitor, "Hi there", model=model))

    assert (seen.error, seen.text, seen.done) == ("", "Hello from the alias", True)
    assert readme.upstream.requests()[-1]["body"]["model"] == ALIAS_TARGET


@pytest.mark.parametrize("chat_model", nextchat.picker(readme_environment()["CUSTOM_MODELS"]))
def test_a_chat_on_any_listed_model_gets_its_title(readme, chat_model):
    model, provider = nextchat.summary_model(readme.env, chat_model, "OpenAI")
    assert provider == "OpenAI"  # so NextChat sends it to BASE_URL, not to another provider's API
    readme.upstream.configure(reply="Home Sourdough Baking Basics")

    response = forwarded(readme, nextchat.topic_request(readme.visitor, HISTORY, model=model))

    # openai.ts extractMessage; app/store/chat.ts keeps the title only on a 200.
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Home Sourdough Baking Basics"


def test_the_summary_of_a_long_chat_streams_back(readme):
    answer = "Sourdough needs an active starter, a long cold proof and a very hot oven. " * 30
    history = [
        {"role": "user", "content": "Tell me everything about sourdough."},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "And about rye?"},
        {"role": "assistant", "content": answer.replace("Sourdough", "Rye")},
    ]
    assert nextchat.should_summarize(history)
    model, _ = nextchat.summary_model(readme.env, *nextchat.default_model(readme.env))
    readme.upstream.configure(reply="The user bakes sourdough.")

    seen = forwarded_stream(readme, nextchat.summarize_request(readme.visitor, history, model=model))

    assert (seen.error, seen.text, seen.done) == ("", "The user bakes sourdough.", True)
    assert readme.upstream.requests()[-1]["body"]["messages"][-1]["content"] == nextchat.SUMMARIZE_PROMPT


def test_the_balance_shows_what_the_shared_key_spent_and_its_budget(readme):
    # Nothing spent yet: "Used this month $0, subscription $5".
    assert balance(readme, readme.visitor) == (0, 5.0)
    readme.upstream.configure(reply="Hello")
    model, _ = nextchat.default_model(readme.env)
    for text in ("Hi", "Hello again"):
        assert forwarded_stream(readme, nextchat.chat_default(readme.visitor, text, model=model)).done
    assert forwarded(readme, nextchat.topic_request(readme.visitor, HISTORY, model=model)).status_code == 200

    used, budget = balance(readme, readme.visitor)

    assert UsageRecord.objects.filter(api_key=readme.key).count() == 3
    assert used == used_shown(spent_cents(api_key=readme.key))
    assert used  # whole cents were spent, so NextChat shows more than $0
    assert budget == 5.0


def test_a_visitor_with_a_key_of_their_own_has_a_quota_and_balance_of_their_own(readme):
    visitor = User.objects.create_user("dave@example.com", "correct horse battery staple")
    user_quota_set(user=visitor, monthly_budget=Decimal("1.50"))
    own_key, own_secret = api_key_create(user=visitor, name="my NextChat")
    readme.upstream.configure(reply="Hello Dave")
    model, _ = nextchat.default_model(readme.env)

    seen = forwarded_stream(readme, nextchat.chat_default(own_secret, "Hi", model=model))

    assert seen.done
    assert list(UsageRecord.objects.values_list("user", "api_key")) == [(visitor.pk, own_key.pk)]
    used, budget = balance(readme, own_secret)
    assert (used, budget) == (used_shown(spent_cents(user=visitor)), 1.5)
    assert balance(readme, readme.visitor) == (0, 5.0)  # the shared key spent nothing
