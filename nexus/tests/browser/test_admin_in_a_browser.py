"""The operator's console in a real browser: sign in, add a provider and a model, create an
API key and see it once, read the usage dashboard's charts, change a runtime setting."""

from __future__ import annotations

import re

import pytest

from accounts.models import ApiKey, AuditEvent, User
from llm.models import Model, Provider
from nexus.lib import runtime
from nexus.tests.console.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_an_admin_signs_in_and_lands_on_the_dashboard(page, screenshot, catalog, record_call):
    user = make_user("busy@example.com")
    for model in (catalog.primary, catalog.primary, catalog.backup):
        record_call(user, model, input_tokens=1200, output_tokens=300)
    page.reload()
    assert page.locator("#nexus-dashboard").is_visible()
    assert page.locator("#nexus-users-total").inner_text() == "2"
    today = page.locator("#nexus-usage tbody tr").first.locator("td")
    assert today.first.inner_text() == "3"
    assert page.locator("#nexus-busiest-models tbody tr").first.inner_text().startswith("house-large")
    screenshot(page, "home")


def test_an_admin_adds_a_provider_and_a_model(page, screenshot):
    page.goto("/admin/llm/provider/add/")
    page.fill("#id_name", "acme")
    page.select_option("#id_kind", "openai_compatible")
    page.fill("#id_base_url", "http://127.0.0.1:9/v1")
    page.fill("#id_api_key", "sk-acme-0123456789abcdef")
    screenshot(page, "provider-form")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist li")
    assert "acme" in page.locator("#result_list").inner_text()
    assert "sk-acme" not in page.content()

    page.goto("/admin/llm/model/add/")
    page.fill("#id_name", "acme-chat")
    page.select_option("#id_provider", label="acme")
    page.fill("#id_upstream_name", "acme-chat-v2")
    page.fill("#id_input_price_per_million", "0.5")
    page.fill("#id_output_price_per_million", "1.5")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist li")
    screenshot(page, "model-list")

    provider = Provider.objects.get(name="acme")
    assert provider.api_key_encrypted and "sk-acme" not in provider.api_key_encrypted
    model = Model.objects.get(name="acme-chat")
    assert (model.provider, model.upstream_name, str(model.output_price_per_million)) == (
        provider,
        "acme-chat-v2",
        "1.500000",
    )


def test_an_admin_creates_an_api_key_and_sees_the_secret_once(page, screenshot):
    owner = make_user("scripts@example.com")
    page.goto("/admin/accounts/apikey/add/")
    page.fill("#id_user", str(owner.pk))
    page.fill("#id_name", "nightly-export")
    page.click("input[name=_save]")
    secret = page.locator("#api-key-secret").inner_text().strip()
    screenshot(page, "secret-shown")
    assert re.fullmatch(r"nx-[A-Za-z0-9_-]{20,}", secret)
    key = ApiKey.objects.get(name="nightly-export")
    assert key.user == owner and secret.startswith(key.prefix)

    page.click("text=Go to the key")
    page.wait_for_selector("#apikey_form")
    assert secret not in page.content()
    page.goto("/admin/accounts/apikey/")
    assert secret not in page.content()
    assert AuditEvent.objects.filter(action="key.created", target=f"key:{key.pk}").exists()


def test_the_usage_dashboard_draws_its_charts(page, screenshot, catalog, record_call):
    for number, model in enumerate((catalog.primary, catalog.primary, catalog.backup)):
        record_call(make_user(f"user{number}@example.com"), model, input_tokens=400, output_tokens=900)
    page.goto("/admin/billing/usagedashboard/")
    page.wait_for_selector(".nexus-charts")
    charts = page.locator(".nexus-charts svg")
    assert charts.count() == 4
    for index in range(4):
        assert charts.nth(index).is_visible()
        assert charts.nth(index).locator("rect, circle").count() > 0  # bars, columns, dots
    totals = page.locator(".nexus-totals").inner_text()
    assert "Calls\n3" in totals or "Calls 3" in totals.replace("\n", " ")
    assert "house-large" in page.locator(".nexus-charts").inner_text()
    screenshot(page, "charts")


def test_an_admin_changes_a_runtime_setting(page, screenshot):
    page.goto("/admin/nexus/runtimesettings/")
    page.wait_for_selector("#runtimesettings_form")
    page.fill("#id_ai_calls_per_minute", "7")
    page.check("#id_maintenance_mode")
    page.fill("#id_maintenance_message", "Upgrading, back at noon.")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist li")
    screenshot(page, "saved")
    assert "every server uses them now" in page.locator(".messagelist").inner_text()
    assert page.input_value("#id_ai_calls_per_minute") == "7"

    config = runtime.current()
    assert (config.ai_calls_per_minute, config.maintenance_mode) == (7, True)
    event = AuditEvent.objects.get(action="settings.changed")
    assert event.actor == User.objects.get(email="operator@example.com")
    page.goto("/admin/")
    assert "Upgrading, back at noon." in page.locator("#nexus-maintenance").inner_text()
