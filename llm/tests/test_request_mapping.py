"""The normalized request lands where each protocol wants it: system prompt, roles, parameters."""

from __future__ import annotations

import pytest

from llm.tests.conftest import run
from llm.types import ChatMessage, ChatRequest

pytestmark = pytest.mark.django_db

CONVERSATION = ChatRequest(
    system="You are terse.",
    messages=(
        ChatMessage(role="user", content="Hi"),
        ChatMessage(role="assistant", content="Hello."),
        ChatMessage(role="user", content="Bye"),
    ),
    temperature=0.9,
    stop=("END",),
)


@pytest.mark.parametrize("kind", ["openai", "azure_openai", "deepseek", "openai_compatible"])
def test_openai_kinds_get_a_system_message_first(fake_upstream, kind):
    fake_upstream.make_model(kind=kind, name="m", upstream_name="up-model")

    run("m", CONVERSATION)

    [request] = fake_upstream.requests()
    assert request["body"]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Bye"},
    ]
    assert request["body"]["stream_options"] == {"include_usage": True}
    assert request["body"]["stop"] == ["END"]
    if kind == "azure_openai":
        assert request["path"] == "/openai/deployments/up-model/chat/completions"
        assert request["query"] == {"api-version": fake_upstream.api_version}
    else:
        assert request["path"] == "/v1/chat/completions"
        assert request["body"]["model"] == "up-model"


def test_anthropic_gets_the_system_prompt_in_its_own_field(fake_upstream):
    fake_upstream.make_model(kind="anthropic", name="m", upstream_name="claude-up", max_output_tokens=1000)

    run("m", CONVERSATION)

    body = fake_upstream.requests()[0]["body"]
    assert body["system"] == "You are terse."
    assert body["model"] == "claude-up"
    assert [message["role"] for message in body["messages"]] == ["user", "assistant", "user"]
    assert body["max_tokens"] == 1000  # Anthropic requires one: the model's limit
    assert body["stop_sequences"] == ["END"]


def test_gemini_gets_a_system_instruction_and_model_turns(fake_upstream):
    fake_upstream.make_model(kind="gemini", name="m", upstream_name="gemini-up")

    run("m", CONVERSATION)

    [request] = fake_upstream.requests()
    body = request["body"]
    assert request["path"].endswith("/models/gemini-up:streamGenerateContent")
    assert request["query"] == {"alt": "sse"}
    assert body["systemInstruction"]["parts"] == [{"text": "You are terse."}]
    assert [content["role"] for content in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][2]["parts"] == [{"text": "Bye"}]
    assert body["generationConfig"]["stopSequences"] == ["END"]


@pytest.mark.parametrize(
    ("kind", "limit_key"),
    [
        ("openai", "max_completion_tokens"),
        ("deepseek", "max_tokens"),
        ("anthropic", "max_tokens"),
        ("gemini", "maxOutputTokens"),
    ],
)
def test_the_models_default_parameters_sit_under_the_requests(fake_upstream, kind, limit_key):
    fake_upstream.make_model(
        kind=kind,
        name="m",
        default_params={"temperature": 0.2, "top_p": 0.5, "max_tokens": 64},
        max_output_tokens=100,
    )

    run("m", ChatRequest(messages=(ChatMessage(role="user", content="Hi"),), temperature=0.9))

    body = fake_upstream.requests()[0]["body"]
    sampling = body.get("generationConfig", body)
    assert sampling[limit_key] == 64
    assert sampling["temperature"] == 0.9
    assert sampling["top_p" if kind != "gemini" else "topP"] == 0.5


def test_a_requested_limit_is_capped_at_the_models_maximum(fake_upstream):
    fake_upstream.make_model(kind="openai", name="m", max_output_tokens=100)

    run("m", ChatRequest(messages=(ChatMessage(role="user", content="Hi"),), max_tokens=5000))

    assert fake_upstream.requests()[0]["body"]["max_completion_tokens"] == 100


def test_other_default_parameters_pass_through_to_the_provider(fake_upstream):
    fake_upstream.make_model(kind="openai", name="m", default_params={"presence_penalty": 0.5, "seed": 7})

    run("m")

    body = fake_upstream.requests()[0]["body"]
    assert body["presence_penalty"] == 0.5
    assert body["seed"] == 7


def test_the_providers_extra_headers_are_sent(fake_upstream, kind):
    fake_upstream.make_model(kind=kind, name="m", provider_fields={"extra_headers": {"X-Team": "blue"}})

    run("m")

    assert fake_upstream.requests()[0]["headers"]["x-team"] == "blue"
