"""Runtime settings in the admin: one page, saved through the service, audited."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from nexus.lib import runtime

pytestmark = pytest.mark.django_db

PAGE = "/admin/nexus/runtimesettings/1/change/"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def form(**values) -> dict:
    data = {
        "registration_open": "",
        "default_model": "",
        "max_message_chars": "",
        "default_monthly_budget": "",
        "ai_calls_per_minute": "",
        "maintenance_message": "",
    }
    data.update(values)
    return data


def test_the_list_leads_to_the_one_settings_page(admin_client):
    response = admin_client.get("/admin/nexus/runtimesettings/")
    assert response.status_code == 302
    assert response["Location"] == PAGE
    page = admin_client.get(PAGE).content.decode()
    assert "the environment&#x27;s value, 20" in page or "the environment's value, 20" in page


def test_saving_the_page_changes_the_settings_and_is_audited(admin_client, admin_user, settings):
    settings.AI_CALLS_PER_MINUTE = 20
    response = admin_client.post(
        PAGE, form(ai_calls_per_minute="6", registration_open="false", maintenance_mode="on"), follow=True
    )
    assert response.status_code == 200
    assert "every server uses them now" in response.content.decode()
    config = runtime.current()
    assert (config.ai_calls_per_minute, config.registration_open, config.maintenance_mode) == (6, False, True)
    event = AuditEvent.objects.get(action="settings.changed")
    assert event.actor == admin_user
    assert event.metadata["changes"]["ai_calls_per_minute"] == {"old": 20, "new": 6}
    assert set(event.metadata["changes"]) == {"ai_calls_per_minute", "registration_open", "maintenance_mode"}


def test_a_bad_value_is_shown_on_the_form_and_changes_nothing(admin_client):
    response = admin_client.post(PAGE, form(ai_calls_per_minute="-3", default_model="missing"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert {"ai_calls_per_minute", "default_model"} <= set(errors)
    assert not AuditEvent.objects.filter(action="settings.changed").exists()


def test_the_settings_can_be_neither_added_nor_deleted(admin_client):
    assert admin_client.get("/admin/nexus/runtimesettings/add/").status_code == 403
    admin_client.get("/admin/nexus/runtimesettings/")
    assert admin_client.get("/admin/nexus/runtimesettings/1/delete/").status_code == 403
