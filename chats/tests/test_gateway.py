"""The OpenAI-compatible gateway, driven by the official `openai` SDK against a live server."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from accounts.services import api_key_create, api_key_revoke
from billing.models import UsageRecord
from billing.services import user_quota_set
from chats.models import Conversation, Message
from chats.tests.conftest import bearer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


@pytest.fixture
def gateway(module_server, chat):
    """A live server, an API key of the chat user, and an Anthropic-kind model beside the OpenAI one."""
    chat.upstream.make_model(kind="anthropic", name="claude-test", max_output_tokens=256)
    key, secret = api_key_create(user=chat.user, name="sdk")
    server = module_server
    chat.key, chat.secret = key, secret
    chat.client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0, timeout=10)
    chat.async_client = openai.AsyncOpenAI(
        base_url=f"{server.url}/v1", api_key=secret, max_retries=0, timeout=10
    )
    return chat


def test_models_are_listed(gateway):
    ids = [model.id for model in gateway.client.models.list()]
    assert {"gpt-test", "claude-test"} <= set(ids)


@pytest.mark.parametrize("model", ["gpt-test", "claude-test"])
def test_a_completion_equals_what_the_upstream_sent(gateway, model):
    gateway.upstream.configure(reply="Bonjour, le monde")
    completion = gateway.client.chat.completions.create(
        model=model, messages=[{"role": "system", "content": "Be French."}, {"role": "user", "content": "Hi"}]
    )
    assert completion.choices[0].message.content == "Bonjour, le monde"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == model
    assert completion.usage.completion_tokens == 3
    record = UsageRecord.objects.get()
    assert (record.input_tokens, record.output_tokens) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    )
    assert record.api_key_id == gateway.key.pk
    assert not Conversation.objects.exists()  # stateless unless asked


@pytest.mark.parametrize("model", ["gpt-test", "claude-test"])
def test_a_streamed_completion_equals_what_the_upstream_sent(gateway, model):
    gateway.upstream.configure(reply="one two three four", token_delay=0.005)
    stream = gateway.client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": [{"type": "text", "text": "Count"}]}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert UsageRecord.objects.get().output_tokens == 4


async def test_the_async_sdk_streams_too(gateway):
    gateway.upstream.configure(reply="async works")
    stream = await gateway.async_client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "async works"


def test_the_save_header_keeps_the_exchange_as_a_conversation(gateway):
    gateway.upstream.configure(reply="Saved reply")
    gateway.client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "Remember this"}],
        extra_headers={"X-Nexus-Save": "true"},
    )
    conversation = Conversation.objects.get()
    assert conversation.owner_id == gateway.user.pk
    assert list(Message.objects.values_list("role", "content", "status")) == [
        ("user", "Remember this", "complete"),
        ("assistant", "Saved reply", "complete"),
    ]


def test_a_revoked_key_raises_authentication_error(gateway):
    api_key_revoke(key=gateway.key)
    with pytest.raises(openai.AuthenticationError) as error:
        gateway.client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert error.value.code == "invalid_api_key"


def test_the_21st_call_in_a_minute_raises_rate_limit_error(gateway):
    gateway.upstream.configure(reply="ok")
    for _ in range(20):
        gateway.client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as error:
        gateway.client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert error.value.code == "rate_limit_exceeded"
    assert error.value.response.headers.get("retry-after")
    assert UsageRecord.objects.count() == 20


def test_an_exhausted_budget_raises_insufficient_quota_without_an_upstream_call(gateway):
    user_quota_set(user=gateway.user, monthly_budget=Decimal("0.000001"))
    with pytest.raises(openai.RateLimitError) as error:
        gateway.client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert error.value.code == "insufficient_quota"
    assert gateway.upstream.requests() == []


def test_an_unknown_model_raises_not_found(gateway):
    with pytest.raises(openai.NotFoundError) as error:
        gateway.client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "hi"}])
    assert error.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"extra_body": {"mystery": 1}}, "mystery"),
        ({"temperature": 3}, "temperature"),
        ({"n": 0}, "n"),
        ({"presence_penalty": 2.5}, "presence_penalty"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"tools": [{"type": "function", "function": {"name": "no spaces"}}]}, "tools[0].function.name"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"logit_bias": {"abc": 5}}, "logit_bias"),
    ],
)
def test_invalid_parameters_raise_bad_request_naming_them(gateway, extra, param):
    with pytest.raises(openai.BadRequestError) as error:
        gateway.client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], **extra
        )
    assert error.value.param == param
    assert gateway.upstream.requests() == []
    assert not UsageRecord.objects.exists()


def test_neutral_values_apps_send_by_default_are_accepted(gateway):
    gateway.upstream.configure(reply="fine")
    completion = gateway.client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "hi"}],
        n=1,
        presence_penalty=0,
        frequency_penalty=0,
        top_p=1,
        user="someone",
    )
    assert completion.choices[0].message.content == "fine"


def test_an_upstream_failure_is_a_502_before_streaming(gateway):
    gateway.upstream.configure(error_status=500)
    with pytest.raises(openai.InternalServerError) as error:
        gateway.client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert error.value.status_code == 502
    assert UsageRecord.objects.get().outcome == "failed"


def test_a_jwt_works_as_well(gateway, module_server):
    client = openai.OpenAI(
        base_url=f"{module_server.url}/v1",
        api_key=bearer(gateway.user)["Authorization"].split()[1],
        max_retries=0,
    )
    gateway.upstream.configure(reply="jwt ok")
    completion = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "jwt ok"
