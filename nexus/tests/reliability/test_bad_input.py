"""Bad input on the real endpoints is a clear 4xx (or a form error in the admin), and nothing
is saved: oversized and deep bodies, invalid UTF-8, NUL characters, numbers out of range,
huge page numbers, negative prices.

The parser itself is covered in nexus/tests/test_error_shape.py on a test view; these go
through the endpoints clients use, each of which writes rows when the input is good.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey, Role, User
from chats.models import Conversation, Message, Template
from llm.models import Model, Provider
from nexus.tests.reliability.conftest import client_with, jwt_for, make_user, rows_snapshot

pytestmark = pytest.mark.django_db

# Each endpoint takes a body that would write rows if it were good.
WRITING_ENDPOINTS = ("/chat/send", "/keys", "/llm/providers", "/v1/chat/completions", "/chat/templates")


@pytest.fixture
def admin() -> User:
    return make_user("root@example.com", role=Role.ADMIN)


@pytest.fixture
def admin_client(admin) -> APIClient:
    return client_with(jwt_for(admin))


@pytest.fixture
def model(admin) -> Model:
    provider = Provider.objects.create(name="offline", kind="demo")
    return Model.objects.create(provider=provider, name="demo-bad-input", upstream_name="demo")


def post_raw(client: APIClient, path: str, body: bytes) -> Any:
    return client.generic("POST", path, body, content_type="application/json")  # type: ignore[arg-type]


def assert_refused(response, status: int) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["message"]
    return error


@pytest.mark.parametrize("path", WRITING_ENDPOINTS)
def test_a_body_over_the_limit_is_413_and_nothing_is_saved(path, admin_client, model, settings):
    settings.MAX_REQUEST_BYTES = 4096
    settings.MAX_AI_REQUEST_BYTES = 4096  # /v1's own, larger limit
    body = {"message": "x" * 8000, "name": "x" * 8000, "model": model.name, "kind": "openai"}
    before = rows_snapshot()
    assert_refused(post_raw(admin_client, path, json.dumps(body).encode()), 413)
    assert rows_snapshot() == before


@pytest.mark.parametrize("path", WRITING_ENDPOINTS)
def test_deeply_nested_json_is_400_and_nothing_is_saved(path, admin_client):
    before = rows_snapshot()
    assert_refused(post_raw(admin_client, path, b'{"message": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"), 400)
    assert rows_snapshot() == before


@pytest.mark.parametrize("path", WRITING_ENDPOINTS)
def test_invalid_utf8_is_400_and_nothing_is_saved(path, admin_client):
    before = rows_snapshot()
    assert_refused(post_raw(admin_client, path, b'{"message": "\xc3\x28", "name": "\xff"}'), 400)
    assert rows_snapshot() == before


@pytest.mark.parametrize("path", WRITING_ENDPOINTS)
def test_a_body_that_is_not_an_object_is_400(path, admin_client):
    for body in (b"[]", b'"text"', b"42", b"null"):
        assert_refused(post_raw(admin_client, path, body), 400)


# --- NUL characters: PostgreSQL's text cannot hold them --------------------------------------


def test_a_nul_character_in_a_chat_message_is_400(admin_client, model):
    before = rows_snapshot()
    response = admin_client.post("/chat/send", {"message": "a\x00b", "model": model.name}, format="json")
    assert assert_refused(response, 400)["param"] == "message"
    assert rows_snapshot() == before


def test_a_nul_character_in_a_key_name_is_400(admin_client):
    response = admin_client.post("/keys", {"name": "a\x00b"}, format="json")
    assert_refused(response, 400)
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("save", ["false", "true"])
@pytest.mark.parametrize(
    "field",
    [
        {"model": "demo\x00"},
        {"messages": [{"role": "user", "content": "a\x00b"}]},
        {"messages": [{"role": "system", "content": "\x00"}, {"role": "user", "content": "hi"}]},
    ],
    ids=["model", "user-content", "system-content"],
)
def test_a_nul_character_in_a_gateway_request_is_400(field, save, admin_client, model):
    body = {"model": model.name, "messages": [{"role": "user", "content": "hi"}], **field}
    before = rows_snapshot()
    response = admin_client.post("/v1/chat/completions", body, format="json", HTTP_X_NEXUS_SAVE=save)
    assert_refused(response, 400)
    assert rows_snapshot() == before


# --- numbers out of range ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        {"conversation_id": 10**30},
        {"template_id": 10**30},
        {"conversation_id": 2**63},
        {"max_tokens": 10**30},
        {"temperature": 1e308 * 10},  # json.dumps writes Infinity, which is not JSON: 400 either way
        {"temperature": -0.5},
    ],
    ids=["conversation-huge", "template-huge", "conversation-past-bigint", "max-tokens", "inf", "negative"],
)
def test_numbers_out_of_range_in_a_chat_send_are_a_4xx(field, admin_client, model):
    before = rows_snapshot()
    body = json.dumps({"message": "hi", "model": model.name, **field}).encode()
    response = post_raw(admin_client, "/chat/send", body)
    assert 400 <= response.status_code < 500, response.content
    assert rows_snapshot() == before


@pytest.mark.parametrize(
    "field",
    [{"max_tokens": 10**30}, {"max_completion_tokens": -1}, {"temperature": 1e300}, {"top_p": -1}],
    ids=["max-tokens-huge", "max-completion-negative", "temperature", "top-p"],
)
def test_numbers_out_of_range_in_a_gateway_request_are_a_4xx(field, admin_client, model, settings):
    settings.AI_CALLS_PER_MINUTE = 0
    body = {"model": model.name, "messages": [{"role": "user", "content": "hi"}], **field}
    before = rows_snapshot()
    response = admin_client.post("/v1/chat/completions", body, format="json")
    if "max_tokens" in field:  # capped at the model's own maximum, as OpenAI's clients expect
        assert response.status_code in (200, 400), response.content
    else:
        assert_refused(response, 400)
        assert rows_snapshot() == before


@pytest.mark.parametrize(
    "path",
    [
        "/chat/conversations/{}",
        "/chat/conversations/{}/messages",
        "/chat/templates/{}",
        "/keys/{}",
        "/users/{}",
    ],
)
def test_an_id_past_the_database_integer_range_is_404(path, admin_client):
    assert_refused(admin_client.get(path.format(10**30)), 404)


def test_a_provider_with_a_negative_or_huge_timeout_is_400(admin_client):
    for timeout in (-1, 0, 10**400):
        response = admin_client.post(
            "/llm/providers", {"name": "p", "kind": "openai", "total_timeout": timeout}, format="json"
        )
        assert_refused(response, 400)
    assert not Provider.objects.exists()


def test_a_model_with_a_negative_price_is_400_through_the_api(admin_client, model):
    response = admin_client.post(
        "/llm/models",
        {
            "name": "negative",
            "provider": model.provider_id,
            "upstream_name": "x",
            "input_price_per_million": "-1.00",
        },
        format="json",
    )
    assert assert_refused(response, 400)["param"] == "input_price_per_million"
    assert not Model.objects.filter(name="negative").exists()


# --- page numbers -----------------------------------------------------------------------------

LISTS = ("/chat/conversations", "/chat/history", "/chat/templates", "/keys", "/llm/providers", "/users")


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    "query", [f"page={10**30}", "page=-1", "page=0", "page=abc", "page=1e9", f"page_size={10**30}"]
)
def test_huge_or_odd_page_numbers_are_a_clear_4xx_or_a_capped_page(path, query, admin_client):
    response = admin_client.get(f"{path}?{query}")
    if query.startswith("page_size"):
        assert response.status_code == 200, response.content  # capped at the maximum page size
    else:
        assert_refused(response, 404)


def test_a_huge_page_number_on_the_audit_trail_is_404(admin_client):
    assert_refused(admin_client.get(f"/system/audit?page={10**30}"), 404)


def test_an_actor_past_the_integer_range_on_the_audit_trail_finds_nothing(admin_client):
    response = admin_client.get(f"/system/audit?actor={10**30}")
    assert response.status_code == 200
    assert response.json()["results"] == []


# --- the admin's forms ------------------------------------------------------------------------


@pytest.fixture
def admin_browser(client, admin):
    client.force_login(admin)
    return client


def _model_form(model: Model, **changes: Any) -> dict[str, Any]:
    data = {
        "name": "priced",
        "display_name": "",
        "provider": model.provider_id,
        "upstream_name": "priced",
        "enabled": "on",
        "input_price_per_million": "1.00",
        "output_price_per_million": "2.00",
        "context_window": "8192",
        "max_output_tokens": "4096",
        "default_params": "{}",
        "kind": "chat",
        "fallback_entries-TOTAL_FORMS": "0",
        "fallback_entries-INITIAL_FORMS": "0",
        "fallback_entries-MIN_NUM_FORMS": "0",
        "fallback_entries-MAX_NUM_FORMS": "1000",
        "aliases-TOTAL_FORMS": "0",
        "aliases-INITIAL_FORMS": "0",
        "aliases-MIN_NUM_FORMS": "0",
        "aliases-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


def test_the_admin_adds_a_model_with_good_prices(admin_browser, model):
    """The form data below is complete, so the refusals that follow are about the prices."""
    response = admin_browser.post("/admin/llm/model/add/", _model_form(model))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Model.objects.get(name="priced").input_price_per_million == Decimal("1.00")


@pytest.mark.parametrize(
    "changes",
    [
        {"input_price_per_million": "-1"},
        {"output_price_per_million": "-0.000001"},
        {"input_price_per_million": "1e400"},
        {"context_window": "-5"},
    ],
    ids=["negative-input", "negative-output", "huge", "negative-context"],
)
def test_the_admin_refuses_a_model_with_a_negative_or_absurd_price_as_a_form_error(
    changes, admin_browser, model
):
    response = admin_browser.post("/admin/llm/model/add/", _model_form(model, **changes))
    assert response.status_code == 200  # the form again, with its errors
    field = next(iter(changes))
    assert field in response.context["adminform"].form.errors
    assert not Model.objects.filter(name="priced").exists()


def test_the_admin_refuses_a_negative_price_when_changing_a_model(admin_browser, model):
    response = admin_browser.post(
        f"/admin/llm/model/{model.pk}/change/",
        _model_form(model, name=model.name, upstream_name="demo", input_price_per_million="-3"),
    )
    assert response.status_code == 200
    model.refresh_from_db()
    assert model.input_price_per_million == Decimal("0")


def test_nothing_of_anyone_else_is_touched_by_refused_input(admin_client):
    """A control: the snapshot sees a write, so 'nothing saved' above is not vacuous."""
    other = make_user("someone@example.com")
    before = rows_snapshot()
    Template.objects.create(owner=other, name="written")
    assert rows_snapshot() != before
    assert Conversation.objects.count() == Message.objects.count() == 0


# --- NUL characters in query strings ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/chat/conversations?q=a%00b",
        "/chat/conversations?archived=%00",
        "/users?search=a%00b",
        "/system/audit?action=a%00b",
        "/billing/usage?group_by=%00",
        "/billing/usage?from=%00",
        "/chat/shared/a%00b",
        "/chat/messages/1/stream?last_event_id=%00",
    ],
)
def test_a_nul_character_in_a_query_is_a_clear_4xx_or_finds_nothing(path, admin_client):
    response = admin_client.get(path)
    assert response.status_code in (200, 400, 404), response.content
    if response.status_code == 200:
        assert response.json().get("results", []) == []


# --- what is not text, and what only looks like a number ------------------------------------


@pytest.mark.parametrize("path", WRITING_ENDPOINTS)
def test_a_lone_surrogate_is_400_and_nothing_is_saved(path, admin_client, model):
    body = b'{"message": "a\\ud800b", "name": "\\udfff", "model": "demo-bad-input", "kind": "openai"}'
    before = rows_snapshot()
    error = assert_refused(post_raw(admin_client, path, body), 400)
    assert "surrogate" in error["message"]
    assert rows_snapshot() == before


def test_a_surrogate_pair_is_text_and_is_kept(admin_client, model):
    response = post_raw(admin_client, "/chat/templates", b'{"name": "\\ud83d\\ude00", "system_prompt": "x"}')
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "\U0001f600"


@pytest.mark.parametrize("value", ["²", "¹²", "٣", "-1", "1e3"])
def test_a_last_event_id_that_is_not_ascii_digits_is_a_400(value, admin, admin_client):
    conversation = Conversation.objects.create(owner=admin, title="t")
    reply = Message.objects.create(conversation=conversation, role="assistant", content="done")
    path = f"/chat/messages/{reply.pk}/stream"
    by_header = admin_client.get(path, HTTP_LAST_EVENT_ID=value.encode().decode("latin-1"))
    by_query = admin_client.get(path, {"last_event_id": value})
    for response in (by_header, by_query):
        assert response.status_code == 400, response.content
        assert response.json()["error"]["param"] == "last_event_id"
