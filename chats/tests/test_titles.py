"""Titles written by a model: the operator's `title_model` names a new conversation after its
first reply, in the background, as an AI call of its own (ledger kind `title`, charged, not
counted by the per-minute limit); whatever goes wrong, the first-words title stays."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from accounts.models import Role
from billing.models import UsageRecord
from billing.services import user_quota_set
from chats import titles
from chats.models import Conversation
from chats.routing import websocket_urlpatterns
from chats.tests.conftest import read_events, send
from nexus.services import runtime_settings_update
from nexus.tests.console.conftest import bearer, make_user

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = "Plan a weekend in Lisbon with kids"


def title_model(chat, price: Decimal = Decimal("3.00"), **provider_fields) -> None:
    """A model named `titler` on the fake upstream, chosen as the title model."""
    chat.upstream.make_model(
        kind="openai",
        name="titler",
        input_price_per_million=price,
        output_price_per_million=price * 2,
        provider_fields=provider_fields,
    )
    runtime_settings_update(actor=None, changes={"title_model": "titler"})


@pytest.fixture
def titled(chat):
    # The title model answers as models do, with quotes and a period the title drops.
    title_model(chat, extra_headers={"x-fake-reply": '"Weekend in Lisbon."'})
    chat.upstream.configure(reply="Day one: the aquarium. Day two: the tram.")
    return chat


async def titles_written() -> None:
    """Waits for the title tasks of this process (started just after a reply is saved)."""
    for _ in range(500):
        if titles._tasks:
            break
        await asyncio.sleep(0.01)
    await asyncio.wait_for(asyncio.gather(*list(titles._tasks)), 10)


def titler_requests(chat) -> list[dict]:
    return [request for request in chat.upstream.requests() if request["model"] == "titler"]


async def test_a_title_model_retitles_a_new_conversation_and_every_tab_hears_it(titled):
    token = titled.headers["Authorization"].removeprefix("Bearer ")
    application = URLRouter(websocket_urlpatterns)
    writer = WebsocketCommunicator(application, f"/ws/chat?token={token}")
    other_tab = WebsocketCommunicator(application, f"/ws/chat?token={token}")
    assert (await writer.connect())[0] and (await other_tab.connect())[0]
    await writer.send_json_to({"type": "send", "message": QUESTION, "model": "gpt-test"})

    frames: list[dict] = []
    while not any(f["type"] == "conversation.updated" and f["title"] == "Weekend in Lisbon" for f in frames):
        frames.append(await other_tab.receive_json_from(timeout=10))
    created = next(frame for frame in frames if frame["type"] == "conversation.created")
    assert created["title"] == QUESTION  # the first words first, at once
    await writer.disconnect()
    await other_tab.disconnect()

    conversation = await Conversation.objects.aget(pk=created["id"])
    assert conversation.title == "Weekend in Lisbon"
    (request,) = await sync_to_async(titler_requests)(titled)
    sent = request["body"]["messages"]
    assert sent[0]["role"] == "system"
    assert [m["content"] for m in sent[1:3]] == [QUESTION, "Day one: the aquarium. Day two: the tram."]


async def test_a_title_call_is_in_the_ledger_and_not_counted_by_the_per_minute_limit(
    async_client, titled, settings
):
    settings.AI_CALLS_PER_MINUTE = 2
    first = await read_events(await send(async_client, titled.headers, message=QUESTION, model="gpt-test"))
    await titles_written()
    conversation_id = first[0].data["conversation_id"]
    assert (await Conversation.objects.aget(pk=conversation_id)).title == "Weekend in Lisbon"

    records = [record async for record in UsageRecord.objects.order_by("id")]
    assert [(record.kind, record.model_name) for record in records] == [
        ("chat", "gpt-test"),
        ("title", "titler"),
    ]
    title_call = records[1]
    assert title_call.user_id == titled.user.pk and title_call.outcome == "complete"
    assert (
        title_call.cost
        == (title_call.input_tokens * Decimal("3.00") + title_call.output_tokens * Decimal("6.00"))
        / 1_000_000
    )
    assert title_call.cost > 0

    # Two calls a minute: the title was not one of them, so a second message goes through...
    again = await send(
        async_client, titled.headers, message="And rainy days?", conversation_id=conversation_id
    )
    assert again.status_code == 200
    assert (await read_events(again))[-1].event == "done"
    # ...and a third is refused: the limit is there.
    third = await send(async_client, titled.headers, message="Museums?", conversation_id=conversation_id)
    assert third.status_code == 429
    # Only a new conversation is titled.
    assert await UsageRecord.objects.filter(kind="title").acount() == 1


async def test_a_failing_title_model_leaves_the_first_words_title(async_client, chat):
    await sync_to_async(title_model)(chat, extra_headers={"x-fake-error-status": "500"}, max_retries=0)
    events = await read_events(await send(async_client, chat.headers, message=QUESTION, model="gpt-test"))
    await titles_written()
    assert (await Conversation.objects.aget(pk=events[0].data["conversation_id"])).title == QUESTION
    assert len(await sync_to_async(titler_requests)(chat)) == 1
    record = await UsageRecord.objects.aget(kind="title")
    assert (record.outcome, record.cost) == ("failed", 0)  # refused before a token: not billed


async def test_a_spent_budget_leaves_the_first_words_title(async_client, chat, caplog):
    caplog.set_level("INFO", logger="chats.titles")
    # The chat reply fits the budget; the title model's price does not.
    await sync_to_async(title_model)(chat, Decimal("400000"), extra_headers={"x-fake-reply": "Never asked"})
    await sync_to_async(user_quota_set)(user=chat.user, monthly_budget=Decimal("0.01"))
    events = await read_events(await send(async_client, chat.headers, message=QUESTION, model="gpt-test"))
    assert events[-1].event == "done"
    await titles_written()
    assert (await Conversation.objects.aget(pk=events[0].data["conversation_id"])).title == QUESTION
    assert await sync_to_async(titler_requests)(chat) == []
    assert not await UsageRecord.objects.filter(kind="title").aexists()
    assert "budget" in caplog.text


async def test_without_a_title_model_no_title_call_is_made(async_client, chat):
    events = await read_events(await send(async_client, chat.headers, message=QUESTION, model="gpt-test"))
    assert events[-1].event == "done"
    await asyncio.sleep(0.1)
    assert not titles._tasks
    assert len(await sync_to_async(chat.upstream.requests)()) == 1
    assert (await Conversation.objects.aget(pk=events[0].data["conversation_id"])).title == QUESTION


def test_the_title_model_is_a_runtime_setting_of_the_api_and_the_admin(client, fake_upstream):
    fake_upstream.make_model(name="titler")
    operator = make_user("operator@example.com", role=Role.ADMIN)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=bearer(operator)["Authorization"])
    assert api.get("/system/settings").json()["title_model"] == ""

    response = api.patch("/system/settings", {"title_model": "no-such-model"}, format="json")
    assert (response.status_code, response.json()["error"]["param"]) == (400, "title_model")
    response = api.patch("/system/settings", {"title_model": "titler"}, format="json")
    assert response.status_code == 200
    assert response.json()["title_model"] == "titler" and "title_model" in response.json()["overridden"]
    assert api.patch("/system/settings", {"title_model": None}, format="json").json()["title_model"] == ""

    client.force_login(operator)
    page = client.get("/admin/nexus/runtimesettings/1/change/").content.decode()
    assert 'name="title_model"' in page and '<option value="titler">titler</option>' in page


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ('"Weekend in Lisbon."', "Weekend in Lisbon"),
        ("Title: **Kids in Lisbon**\n\nA plan for families.", "Kids in Lisbon"),
        ("  \n", ""),
    ],
)
def test_the_title_is_read_from_the_models_answer(answer, title):
    assert titles.title_clean(answer) == title
