"""/v1/responses, driven by the official `openai` SDK (`client.responses.*`) against a live server."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import httpx
import openai
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.services import api_key_create
from billing.models import UsageRecord
from billing.services import api_key_quota_set
from chats.models import Conversation, Message
from chats.responses_request import parse_responses_request
from chats.tests.conftest import bearer, client_for
from chats.tests.samples import PIXEL
from nexus.lib.errors import ApiError

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

KINDS = ["gpt-test", "compat-test", "claude-test", "gemini-test"]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def gateway(module_server, chat):
    """A live server, an API key of the chat user, and a model of each provider kind."""
    chat.upstream.make_model(kind="openai_compatible", name="compat-test", max_output_tokens=256)
    chat.upstream.make_model(kind="anthropic", name="claude-test", max_output_tokens=256)
    chat.upstream.make_model(kind="gemini", name="gemini-test", max_output_tokens=256)
    chat.upstream.make_model(
        kind="demo", name="demo-test", max_output_tokens=256, default_params={"token_delay": 0}
    )
    key, secret = api_key_create(user=chat.user, name="sdk")
    chat.key, chat.secret, chat.url = key, secret, module_server.url
    chat.client = openai.OpenAI(base_url=f"{module_server.url}/v1", api_key=secret, max_retries=0, timeout=10)
    return chat


def _last_body(gateway) -> dict[str, Any]:
    return gateway.upstream.requests()[-1]["body"]


def _sent(gateway) -> str:
    return json.dumps(_last_body(gateway))


# --- one response ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", KINDS)
def test_a_response_is_what_the_upstream_sent(gateway, model):
    gateway.upstream.configure(reply="Bonjour, le monde")
    response = gateway.client.responses.create(model=model, instructions="Be French.", input="Hi")
    assert response.id.startswith("resp_")
    assert (response.object, response.status, response.model) == ("response", "completed", model)
    assert response.output_text == "Bonjour, le monde"
    (message,) = response.output
    assert (message.type, message.role, message.status) == ("message", "assistant", "completed")
    assert message.id.startswith("msg_")
    assert message.content[0].annotations == []
    assert response.instructions == "Be French."
    assert response.usage.output_tokens == 3
    assert response.usage.total_tokens == response.usage.input_tokens + 3
    record = UsageRecord.objects.get()
    assert (record.input_tokens, record.output_tokens) == (
        response.usage.input_tokens,
        response.usage.output_tokens,
    )
    assert record.api_key_id == gateway.key.pk
    assert "Be French." in _sent(gateway)


def test_the_demo_model_answers_too(gateway):
    response = gateway.client.responses.create(model="demo-test", input="Hello there")
    assert response.status == "completed"
    assert "Hello there" in response.output_text
    assert UsageRecord.objects.get().output_tokens == response.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["gpt-test", "claude-test", "demo-test"])
def test_a_streamed_response_arrives_in_the_responses_event_sequence(gateway, model):
    gateway.upstream.configure(reply="one two three", token_delay=0.002)
    events = list(gateway.client.responses.create(model=model, input="Count", stream=True))
    kinds = [event.type for event in events]
    deltas = kinds.count("response.output_text.delta")
    assert deltas >= 1
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    done = events[-1].response
    assert events[0].response.id == done.id and events[0].response.status == "in_progress"
    assert done.output_text == text == events[-4].text
    if model != "demo-test":
        assert text == "one two three"
    item_ids = {event.item_id for event in events if hasattr(event, "item_id")}
    assert item_ids == {done.output[0].id}
    assert {event.output_index for event in events if hasattr(event, "output_index")} == {0}
    assert done.usage.output_tokens == UsageRecord.objects.get().output_tokens


def test_the_sdks_stream_helper_puts_the_response_together(gateway):
    gateway.upstream.configure(reply="Streamed whole.")
    with gateway.client.responses.stream(model="gpt-test", input="hi") as stream:
        texts = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == final.output_text == "Streamed whole."


def test_reasoning_comes_first_as_a_reasoning_item_with_its_summary(gateway):
    gateway.upstream.configure(reasoning="Let me think.", reply="Forty-two.")
    response = gateway.client.responses.create(model="gpt-test", input="The answer?")
    reasoning, _message = response.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_")
    assert reasoning.summary[0].text == "Let me think."
    assert response.output_text == "Forty-two."

    events = list(gateway.client.responses.create(model="claude-test", input="The answer?", stream=True))
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary == "Let me think."
    kinds = [event.type for event in events]
    assert kinds.index("response.reasoning_summary_text.done") < kinds.index("response.output_text.delta")
    assert [item.type for item in events[-1].response.output] == ["reasoning", "message"]


def test_a_reply_cut_at_max_output_tokens_is_incomplete(gateway):
    gateway.upstream.configure(tokens=50)
    response = gateway.client.responses.create(model="gpt-test", input="Go on", max_output_tokens=20)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete"
    assert response.max_output_tokens == 20
    assert _last_body(gateway)["max_completion_tokens"] == 20

    events = list(
        gateway.client.responses.create(model="gpt-test", input="Go on", max_output_tokens=20, stream=True)
    )
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


def test_an_upstream_failure_mid_stream_ends_with_response_failed(gateway):
    gateway.upstream.configure(reply="one two three four five", stream_error_after=2, fail_times=None)
    events = list(gateway.client.responses.create(model="claude-test", input="hi", stream=True))
    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "server_error" and failed.error.message
    assert [event.sequence_number for event in events] == list(range(len(events)))


def test_an_upstream_failure_before_the_reply_is_an_openai_error(gateway):
    gateway.upstream.configure(error_status=429, retry_after=30)
    with pytest.raises(openai.RateLimitError) as error:
        gateway.client.responses.create(model="gpt-test", input="hi")
    assert error.value.code == "rate_limit_exceeded"
    assert error.value.response.headers.get("retry-after") == "30"


# --- tools ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-test", "claude-test", "gemini-test"])
def test_a_function_tool_round_trip_by_previous_response_id(gateway, model):
    gateway.upstream.configure(
        reply="", tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}]
    )
    first = gateway.client.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER])
    (call,) = first.output
    assert call.type == "function_call" and call.id.startswith("fc_") and call.status == "completed"
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    assert call.call_id
    assert "get_weather" in _sent(gateway)

    gateway.upstream.configure(reply="It is sunny in Paris.", tool_calls=None)
    second = gateway.client.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "sunny"}'}],
    )
    assert second.output_text == "It is sunny in Paris."
    assert second.previous_response_id == first.id
    body = _last_body(gateway)
    sent = json.dumps(body)
    assert "Weather in Paris?" in sent and "sunny" in sent and call.call_id in sent
    if model == "gpt-test":
        assert [message["role"] for message in body["messages"]] == ["user", "assistant", "tool"]
        assert body["messages"][1]["tool_calls"][0]["id"] == call.call_id
        assert body["messages"][2]["tool_call_id"] == call.call_id
    elif model == "claude-test":
        assert body["messages"][1]["content"][-1]["type"] == "tool_use"
        assert body["messages"][2]["content"][0]["tool_use_id"] == call.call_id
    else:
        assert "functionCall" in json.dumps(body["contents"][1])
        assert "get_weather" in json.dumps(body["contents"][2]["parts"][0]["functionResponse"])
    roles = list(Message.objects.order_by("id").values_list("role", flat=True))
    assert roles == ["user", "assistant", "tool", "assistant"]


def test_a_streamed_function_call_arrives_as_argument_deltas(gateway):
    gateway.upstream.configure(
        reply="", tool_calls=[{"name": "get_weather", "arguments": '{"city": "Oslo"}'}]
    )
    events = list(
        gateway.client.responses.create(model="gpt-test", input="Oslo?", tools=[WEATHER], stream=True)
    )
    kinds = [event.type for event in events]
    assert kinds[2] == "response.output_item.added" and events[2].item.type == "function_call"
    assert events[2].item.name == "get_weather"
    deltas = [event.delta for event in events if event.type == "response.function_call_arguments.delta"]
    (done,) = [event for event in events if event.type == "response.function_call_arguments.done"]
    assert json.loads("".join(deltas)) == json.loads(done.arguments) == {"city": "Oslo"}
    assert kinds[-2:] == ["response.output_item.done", "response.completed"]
    assert events[-1].response.output[0].arguments == done.arguments


def test_a_whole_history_of_items_reaches_the_upstream_in_order(gateway):
    gateway.upstream.configure(reply="Cold.")
    gateway.client.responses.create(
        model="gpt-test",
        store=False,
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        input=[
            {"role": "developer", "content": "Answer briefly."},
            {"role": "user", "content": [{"type": "input_text", "text": "Kyiv?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Checking."}],
            },
            {
                "type": "function_call",
                "call_id": "call_9",
                "name": "get_weather",
                "arguments": '{"city": "Kyiv"}',
            },
            {"type": "function_call_output", "call_id": "call_9", "output": "-5 C"},
        ],
    )
    body = _last_body(gateway)
    assert body["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert body["messages"][2]["content"] == "Checking."
    assert body["messages"][2]["tool_calls"][0]["id"] == "call_9"
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "call_9", "content": "-5 C"}
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["parallel_tool_calls"] is False
    assert not Conversation.objects.exists()


@pytest.mark.parametrize("model", ["gpt-test", "claude-test", "gemini-test"])
def test_an_input_image_reaches_each_provider(gateway, model):
    gateway.upstream.configure(reply="A pixel.")
    response = gateway.client.responses.create(
        model=model,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PIXEL}", "detail": "auto"},
                ],
            }
        ],
    )
    assert response.output_text == "A pixel."
    sent = _sent(gateway)
    if model == "gemini-test":
        inline = _last_body(gateway)["contents"][0]["parts"][1]["inlineData"]
        assert base64.urlsafe_b64decode(inline["data"]) == base64.b64decode(PIXEL)
    else:
        assert PIXEL in sent


# --- structured output ---------------------------------------------------------------------------


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.mark.parametrize("model", ["gpt-test", "claude-test", "gemini-test"])
def test_a_json_schema_text_format_reaches_the_upstream_as_structured_output(gateway, model):
    gateway.upstream.configure(reply='{"name": "Lyon", "population": 522000}')
    response = gateway.client.responses.parse(model=model, input="A French city", text_format=City)
    assert response.output_parsed == City(name="Lyon", population=522000)
    assert response.text.format.type == "json_schema"
    body = _last_body(gateway)
    if model == "gpt-test":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == "City"
        assert (
            body["response_format"]["json_schema"]["schema"]["properties"]["population"]["type"] == "integer"
        )
    elif model == "claude-test":
        assert body["output_config"]["format"]["type"] == "json_schema"
    else:
        assert body["generationConfig"]["responseMimeType"] == "application/json"


def test_the_other_parameters_reach_an_openai_model(gateway):
    gateway.upstream.make_model(kind="openai", name="gpt-reasoner", supports_reasoning=True)
    gateway.upstream.configure(reply="ok")
    gateway.client.responses.create(
        model="gpt-reasoner",
        input="hi",
        temperature=0.3,
        top_p=0.9,
        reasoning={"effort": "low", "summary": "auto"},
        text={"format": {"type": "json_object"}, "verbosity": "low"},
        metadata={"app": "tests"},
        user="user-7",
        safety_identifier="hash-7",
        prompt_cache_key="cache-1",
        include=["reasoning.encrypted_content"],
        truncation="disabled",
        store=False,
    )
    body = _last_body(gateway)
    expected = {
        "temperature": 0.3,
        "top_p": 0.9,
        "reasoning_effort": "low",
        "verbosity": "low",
        "response_format": {"type": "json_object"},
        "metadata": {"app": "tests"},
        "user": "user-7",
        "safety_identifier": "hash-7",
        "prompt_cache_key": "cache-1",
    }
    assert {name: body.get(name) for name in expected} == expected
    assert "store" not in body  # store is Nexus's: it keeps (or not) the exchange, not the provider


# --- stored responses ----------------------------------------------------------------------------


def test_a_stored_response_is_continued_with_its_context(gateway):
    gateway.upstream.configure(reply="Nice to meet you, Ada.")
    first = gateway.client.responses.create(model="gpt-test", input="My name is Ada.")
    assert first.store is True
    conversation = Conversation.objects.get()
    assert conversation.owner_id == gateway.user.pk

    gateway.upstream.configure(reply="Your name is Ada.")
    second = gateway.client.responses.create(
        model="gpt-test", previous_response_id=first.id, input="What is my name?"
    )
    assert second.output_text == "Your name is Ada."
    assert [(m["role"], m["content"]) for m in _last_body(gateway)["messages"]] == [
        ("user", "My name is Ada."),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "What is my name?"),
    ]
    messages = list(conversation.messages.order_by("id"))
    assert [(m.role, m.content) for m in messages] == [
        ("user", "My name is Ada."),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "What is my name?"),
        ("assistant", "Your name is Ada."),
    ]
    # One chain, each message following the one before.
    assert [m.parent_id for m in messages] == [None, *[m.pk for m in messages[:-1]]]
    assert Conversation.objects.count() == 1

    history = client_for(gateway.user).get("/chat/history").json()
    assert [m["content"] for m in history["results"][0]["messages"]][-1] == "Your name is Ada."

    fetched = gateway.client.responses.retrieve(second.id)
    assert (fetched.id, fetched.status, fetched.output_text) == (second.id, "completed", "Your name is Ada.")
    assert fetched.previous_response_id == first.id
    assert fetched.output[0].id == second.output[0].id
    assert fetched.usage.output_tokens == second.usage.output_tokens


def test_continuing_an_earlier_response_branches_from_it(gateway):
    gateway.upstream.configure(reply="First.")
    first = gateway.client.responses.create(model="gpt-test", input="one")
    gateway.upstream.configure(reply="Second.")
    gateway.client.responses.create(model="gpt-test", input="two", previous_response_id=first.id)
    gateway.upstream.configure(reply="Other.")
    other = gateway.client.responses.create(model="gpt-test", input="again", previous_response_id=first.id)
    assert [m["content"] for m in _last_body(gateway)["messages"]] == ["one", "First.", "again"]
    assert gateway.client.responses.retrieve(other.id).previous_response_id == first.id
    assert Conversation.objects.count() == 1


def test_a_stored_streamed_response_can_be_retrieved(gateway):
    gateway.upstream.configure(reasoning="Hmm.", reply="Done streaming.")
    events = list(gateway.client.responses.create(model="gpt-test", input="hi", stream=True))
    fetched = gateway.client.responses.retrieve(events[-1].response.id)
    assert fetched.output_text == "Done streaming."
    assert [item.type for item in fetched.output] == ["reasoning", "message"]
    assert fetched.output[0].summary[0].text == "Hmm."


def test_a_response_being_written_is_in_progress(gateway):
    gateway.upstream.configure(tokens=30, token_delay=0.1)
    stream = gateway.client.responses.create(model="gpt-test", input="hi", stream=True)
    response_id = next(iter(stream)).response.id
    assert next(event for event in stream if event.type == "response.output_text.delta")
    fetched = gateway.client.responses.retrieve(response_id)
    assert (fetched.status, fetched.output, fetched.usage) == ("in_progress", [], None)
    with pytest.raises(openai.ConflictError):
        gateway.client.responses.delete(response_id)
    rest = [event.type for event in stream]
    assert rest[-1] == "response.completed"
    assert gateway.client.responses.retrieve(response_id).status == "completed"


def test_a_response_is_deleted_with_its_exchange(gateway):
    gateway.upstream.configure(reply="First.")
    first = gateway.client.responses.create(model="gpt-test", input="one")
    gateway.upstream.configure(reply="Second.")
    second = gateway.client.responses.create(model="gpt-test", input="two", previous_response_id=first.id)
    gateway.upstream.configure(reply="Third.")
    third = gateway.client.responses.create(model="gpt-test", input="three", previous_response_id=second.id)

    deleted = gateway.client.responses.with_raw_response.delete(second.id)
    assert deleted.http_request.method == "DELETE"
    assert json.loads(deleted.text) == {"id": second.id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        gateway.client.responses.retrieve(second.id)
    assert list(Message.objects.order_by("id").values_list("content", flat=True)) == [
        "one",
        "First.",
        "three",
        "Third.",
    ]
    # What followed the deleted exchange follows what it followed.
    gateway.upstream.configure(reply="Fourth.")
    fourth = gateway.client.responses.create(model="gpt-test", input="four", previous_response_id=third.id)
    assert [m["content"] for m in _last_body(gateway)["messages"]] == [
        "one",
        "First.",
        "three",
        "Third.",
        "four",
    ]

    for response in (first, third, fourth):
        gateway.client.responses.delete(response.id)
    assert not Conversation.objects.exists()


def test_store_false_keeps_nothing_but_the_usage(gateway):
    gateway.upstream.configure(reply="Forgotten.")
    response = gateway.client.responses.create(model="gpt-test", input="hi", store=False)
    assert response.output_text == "Forgotten." and response.store is False
    assert not Conversation.objects.exists() and not Message.objects.exists()
    assert UsageRecord.objects.count() == 1
    with pytest.raises(openai.NotFoundError):
        gateway.client.responses.retrieve(response.id)


def test_another_users_response_is_not_found(gateway, bob):
    gateway.upstream.configure(reply="Mine.")
    mine = gateway.client.responses.create(model="gpt-test", input="hi")
    _key, secret = api_key_create(user=bob, name="bob")
    other = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0, timeout=10)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError) as error:
        other.responses.create(model="gpt-test", input="hi", previous_response_id=mine.id)
    assert (error.value.code, error.value.param) == ("previous_response_not_found", "previous_response_id")
    assert Message.objects.count() == 2  # nothing of bob's was written, nothing of alice's deleted


@pytest.mark.parametrize("response_id", ["resp_0", "resp_1234567890abcdef1234567890abcdef", "resp_zz", "x"])
def test_a_made_up_response_id_is_not_found(gateway, response_id):
    with pytest.raises(openai.NotFoundError) as error:
        gateway.client.responses.retrieve(response_id)
    assert error.value.type == "not_found_error"


def test_a_jwt_works_as_well_as_a_key(gateway):
    gateway.upstream.configure(reply="Hi.")
    token = bearer(gateway.user)["Authorization"].removeprefix("Bearer ")
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0, timeout=10)
    assert client.responses.create(model="gpt-test", input="hi").output_text == "Hi."


# --- admission and bad bodies --------------------------------------------------------------------


def test_a_key_over_its_budget_gets_a_429_without_an_upstream_call(gateway):
    api_key_quota_set(api_key=gateway.key, monthly_budget=Decimal("0.000001"))
    with pytest.raises(openai.RateLimitError) as error:
        gateway.client.responses.create(model="gpt-test", input="hi")
    assert error.value.status_code == 429
    assert error.value.code == "insufficient_quota"
    assert error.value.type == "rate_limit_error"
    assert gateway.upstream.requests() == []
    assert not Conversation.objects.exists()


def test_an_unknown_model_is_not_found(gateway):
    with pytest.raises(openai.NotFoundError) as error:
        gateway.client.responses.create(model="gpt-nope", input="hi")
    assert (error.value.code, error.value.param) == ("model_not_found", "model")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi", "mystery": 1}, "mystery"),
        ({"input": "hi", "background": True}, "background"),
        ({"input": []}, "input"),
        ({"input": [{"role": "robot", "content": "hi"}]}, "input[0].role"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
        ({"input": "hi", "tools": [{"type": "web_search"}, {"type": "file_search"}]}, "tools[0].type"),
        ({"input": "hi", "tools": [{"type": "function", "name": "bad name"}]}, "tools[0].name"),
        (
            {"input": "hi", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "x"}},
            "tool_choice",
        ),
        ({"input": "hi", "tool_choice": "required"}, "tool_choice"),
        ({"input": "hi", "temperature": 3}, "temperature"),
        ({"input": "hi", "top_p": -1}, "top_p"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "hi", "text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"input": "hi", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"input": "hi", "truncation": "sometimes"}, "truncation"),
        ({"input": "hi", "metadata": {"k": 1}}, "metadata"),
        ({"input": "hi", "stream": "yes"}, "stream"),
        ({"input": "hi\x00"}, "input"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {
                "input": [
                    {"role": "user", "content": [{"type": "input_image", "image_url": "http://x/a.png"}]}
                ]
            },
            "input[0].content[0].image_url",
        ),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "data:image/png;base64,!!"}],
                    }
                ]
            },
            "input[0].content[0].image_url",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}]},
            "input[0].content[0].file_url",
        ),
        ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_parameter(gateway, body, param):
    with pytest.raises(openai.BadRequestError) as error:
        gateway.client.post("/responses", body={"model": "gpt-test", **body}, cast_to=dict)
    assert error.value.param == param
    assert error.value.type == "invalid_request_error"
    assert gateway.upstream.requests() == []
    assert not UsageRecord.objects.exists()


def test_a_model_without_tools_refuses_them(gateway):
    gateway.upstream.make_model(kind="openai", name="no-tools", supports_tools=False)
    with pytest.raises(openai.BadRequestError) as error:
        gateway.client.responses.create(model="no-tools", input="hi", tools=[WEATHER])
    assert (error.value.code, error.value.param) == ("model_not_capable", "tools")


def test_a_body_that_is_not_json_is_a_400(gateway):
    response = httpx.post(
        f"{gateway.url}/v1/responses",
        content=b"{not json",
        headers={"Authorization": f"Bearer {gateway.secret}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


# --- whatever a client sends ---------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
_part = st.fixed_dictionaries(
    {"type": st.sampled_from(["input_text", "output_text", "input_image", "input_file", "refusal", "x"])},
    optional={
        name: _json | st.sampled_from(["data:image/png;base64,aGk=", "https://x/a.png", "aGk="])
        for name in ("text", "refusal", "image_url", "detail", "file_data", "file_id", "filename")
    },
)
_item = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "function_call", "function_call_output", "reasoning", "x"])
        | _json,
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool"]) | _json,
        "content": _json | st.lists(_part, max_size=3),
        "call_id": _json,
        "name": _json,
        "arguments": _json,
        "output": _json | st.lists(_part, max_size=2),
    },
)
_body = st.fixed_dictionaries(
    {"model": st.just("m") | _json, "input": st.text(max_size=5) | st.lists(_item, max_size=4) | _json},
    optional={
        name: _json
        for name in (
            "instructions",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "text",
            "max_output_tokens",
            "temperature",
            "top_p",
            "reasoning",
            "metadata",
            "user",
            "store",
            "previous_response_id",
            "stream",
            "stream_options",
            "include",
            "truncation",
            "top_logprobs",
            "background",
            "prompt_cache_retention",
        )
    },
)


@settings(max_examples=400, deadline=None)
@given(_body)
def test_any_body_a_client_sends_is_read_or_refused_with_a_4xx(body):
    try:
        parse_responses_request(body)
    except ApiError as refused:
        assert 400 <= refused.status_code < 500
