"""Runtime settings: GET/PATCH /system/settings, their effect, their cache, their audit trail."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal

import pytest
from django.core.cache import cache

from accounts.models import AuditEvent
from accounts.services import api_key_create
from billing.money import default_monthly_budget
from billing.selectors import user_limits
from nexus.lib import runtime
from nexus.services import runtime_settings_update

pytestmark = pytest.mark.django_db


def test_an_admin_reads_the_environment_values_before_any_change(client_for, admin_user, settings):
    settings.AI_CALLS_PER_MINUTE = 20
    response = client_for(admin_user).get("/system/settings")
    assert response.status_code == 200
    body = response.json()
    assert body["ai_calls_per_minute"] == 20
    assert body["registration_open"] is True
    assert body["maintenance_mode"] is False
    assert body["defaults"]["ai_calls_per_minute"] == 20
    assert body["overridden"] == []


def test_an_admin_changes_settings_and_reads_them_back(client_for, admin_user, fake_upstream):
    fake_upstream.make_model(name="gpt-default")
    client = client_for(admin_user)
    response = client.patch(
        "/system/settings",
        {
            "registration_open": False,
            "default_model": "gpt-default",
            "default_monthly_budget": "25.50",
            "ai_calls_per_minute": 5,
            "max_message_chars": 2000,
            "maintenance_mode": True,
            "maintenance_message": "Back at noon.",
        },
    )
    assert response.status_code == 200, response.content
    body = client.get("/system/settings").json()
    assert body["registration_open"] is False
    assert body["default_model"] == "gpt-default"
    assert Decimal(body["default_monthly_budget"]) == Decimal("25.50")
    assert body["ai_calls_per_minute"] == 5
    assert body["max_message_chars"] == 2000
    assert (body["maintenance_mode"], body["maintenance_message"]) == (True, "Back at noon.")
    assert set(body["overridden"]) == {
        "registration_open",
        "default_model",
        "default_monthly_budget",
        "ai_calls_per_minute",
        "max_message_chars",
    }


def test_null_puts_back_the_environment_value(client_for, admin_user, settings):
    settings.AI_CALLS_PER_MINUTE = 20
    client = client_for(admin_user)
    client.patch("/system/settings", {"ai_calls_per_minute": 3})
    response = client.patch("/system/settings", {"ai_calls_per_minute": None})
    assert response.json()["ai_calls_per_minute"] == 20
    assert response.json()["overridden"] == []


def test_every_change_is_audited_with_old_and_new_values(client_for, admin_user, settings):
    settings.AI_CALLS_PER_MINUTE = 20
    client_for(admin_user).patch("/system/settings", {"ai_calls_per_minute": 3, "maintenance_mode": True})
    event = AuditEvent.objects.get(action="settings.changed")
    assert event.actor == admin_user
    assert event.metadata["changes"] == {
        "ai_calls_per_minute": {"old": 20, "new": 3},
        "maintenance_mode": {"old": False, "new": True},
    }


def test_a_patch_that_changes_nothing_is_not_audited(client_for, admin_user):
    client = client_for(admin_user)
    client.patch("/system/settings", {"maintenance_mode": False})
    assert not AuditEvent.objects.filter(action="settings.changed").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ai_calls_per_minute": -1}, "ai_calls_per_minute"),
        ({"ai_calls_per_minute": "many"}, "ai_calls_per_minute"),
        ({"max_message_chars": 0}, "max_message_chars"),
        ({"default_monthly_budget": "-5"}, "default_monthly_budget"),
        ({"default_monthly_budget": "ten"}, "default_monthly_budget"),
        ({"default_model": "no-such-model"}, "default_model"),
        ({"maintenance_message": "x" * 501}, "maintenance_message"),
        ({"registration_open": "perhaps"}, "registration_open"),
        ({"debug": True}, "debug"),
    ],
)
def test_bad_values_are_refused_with_400_naming_the_field(client_for, admin_user, body, field):
    response = client_for(admin_user).patch("/system/settings", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not AuditEvent.objects.filter(action="settings.changed").exists()


def test_a_body_that_is_not_an_object_is_refused(client_for, admin_user):
    response = client_for(admin_user).patch("/system/settings", [1, 2], format="json")
    assert response.status_code == 400


def test_a_user_is_refused_with_403(client_for, member):
    client = client_for(member)
    assert client.get("/system/settings").status_code == 403
    response = client.patch("/system/settings", {"maintenance_mode": True})
    assert response.status_code == 403
    assert runtime.current().maintenance_mode is False


def test_anonymous_callers_and_api_keys_are_refused_with_401(api_client, admin_user):
    assert api_client.get("/system/settings").status_code == 401
    _, secret = api_key_create(user=admin_user, name="script")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api_client.patch("/system/settings", {"maintenance_mode": True}, format="json").status_code == 401


def test_closed_registration_refuses_new_accounts(api_client, admin_user):
    runtime_settings_update(actor=admin_user, changes={"registration_open": False})
    response = api_client.post(
        "/auth/register", {"email": "new@example.com", "password": "Long-Enough-Pass-77"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "registration_closed"


def test_billing_reads_the_budget_and_the_call_limit(admin_user, member, settings):
    settings.AI_CALLS_PER_MINUTE = 20
    settings.DEFAULT_MONTHLY_BUDGET = "10.00"
    runtime_settings_update(
        actor=admin_user, changes={"ai_calls_per_minute": 2, "default_monthly_budget": Decimal("0.5")}
    )
    limits = user_limits(user_id=member.pk)
    assert limits.calls_per_minute == 2
    assert limits.monthly_budget == Decimal("0.5")
    assert default_monthly_budget() == Decimal("0.5")


def test_the_environment_stays_the_default_while_nothing_is_overridden(settings):
    settings.MAX_MESSAGE_CHARS = 1234
    settings.DEFAULT_MODEL = "env-model"
    assert runtime.max_message_chars() == 1234
    assert runtime.default_model() == "env-model"


def test_reading_the_settings_costs_no_query_once_cached(django_assert_num_queries, admin_user):
    runtime_settings_update(actor=admin_user, changes={"ai_calls_per_minute": 4})
    runtime.current()  # the first read after a change loads the row
    with django_assert_num_queries(0):
        for _ in range(50):
            assert runtime.ai_calls_per_minute() == 4
            runtime.registration_open()
            runtime.default_model()
            runtime.max_message_chars()
            runtime.default_monthly_budget()


@pytest.mark.django_db(transaction=True)
def test_a_committed_change_is_in_the_cache_for_every_process(django_assert_num_queries, admin_user):
    runtime_settings_update(actor=admin_user, changes={"max_message_chars": 321})
    with django_assert_num_queries(0):
        assert runtime.max_message_chars() == 321


@pytest.mark.django_db(transaction=True)
def test_a_reader_that_loaded_the_old_row_cannot_put_it_back(admin_user):
    before_change = runtime.load()
    runtime_settings_update(actor=admin_user, changes={"ai_calls_per_minute": 9})
    assert cache.add(runtime.CACHE_KEY, asdict(before_change), timeout=None) is False
    assert runtime.ai_calls_per_minute() == 9


def test_an_operators_registration_limit_holds_at_once(client_for, admin_user, api_client, settings):
    settings.REGISTRATIONS_PER_HOUR = 100
    password = "correct horse battery staple"

    def register(email: str) -> int:
        body = {"email": email, "password": password}
        return api_client.post("/auth/register", body, format="json", REMOTE_ADDR="10.9.9.9").status_code

    admin = client_for(admin_user)
    assert admin.patch("/system/settings", {"registrations_per_hour": 1}, format="json").status_code == 200
    assert register("first@example.com") == 201
    assert register("second@example.com") == 429
    admin.patch(
        "/system/settings", {"registrations_per_hour": None}, format="json"
    )  # the environment's again
    assert register("second@example.com") == 201
