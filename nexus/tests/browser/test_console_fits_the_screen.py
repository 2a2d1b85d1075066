"""Every page of the operator's console on a 1366x768 laptop screen: nothing wider than the
screen, a screenshot of each (under the test's tmp path) to look at.

The pages are those of every model registered in the admin (its list, its add page, the change
page of a row), the admin home and the usage dashboard, with rows in every table, long values
where a column tends to be wide (a provider's base URL, an audit target, an email).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from accounts import services as account_services
from billing.models import ApiKeyQuota, UserQuota
from chats.models import Conversation, Message, Template
from llm.models import Provider
from nexus.tests.browser.conftest import SCREEN
from nexus.tests.console.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def console_rows(catalog, record_call, operator):
    """A row in every table the console lists, with values as long as real ones get."""
    Provider.objects.create(
        name="azure-west-europe-production",
        kind="azure_openai",
        base_url="https://my-company-openai-west-europe-production.openai.azure.com/openai/deployments",
        api_version="2024-10-21",
    )
    user = make_user("a.rather.long.address.of.someone@engineering.example.com")
    key, _ = account_services.api_key_create(user=user, name="nightly export of the analytics team")
    ApiKeyQuota.objects.create(api_key=key, monthly_budget=Decimal("5.00"))
    UserQuota.objects.create(user=user, monthly_budget=Decimal("20.00"), calls_per_minute=30)
    for model in (catalog.primary, catalog.primary, catalog.backup):
        record_call(user, model, api_key=key, input_tokens=1200, output_tokens=300)
    record_call(user, catalog.backup, outcome="failed", output_tokens=0)
    conversation = Conversation.objects.create(owner=user, title="Plans for the quarter", model="house-large")
    Message.objects.create(conversation=conversation, role="user", content="What is next?")
    Message.objects.create(
        conversation=conversation, role="assistant", content="Shipping.", model="house-large"
    )
    Template.objects.create(owner=user, name="Translator", system_prompt="Translate.", model="house-small")
    account_services.audit_event_record(action="key.created", actor=operator, target=f"key:{key.pk}")
    return {"user": user}


def console_pages(operator) -> list[tuple[str, str]]:
    """(name, URL) of every console page: the home, and per registered model its list (the
    usage dashboard is one), its add page where the operator may add, and the page of its first
    row where there is one."""
    request = RequestFactory().get("/admin/")
    request.user = operator
    pages = [("home", reverse("admin:index"))]
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label):
        info = (model._meta.app_label, model._meta.model_name)
        name = "{}.{}".format(*info)
        pages.append((f"{name}-list", reverse("admin:{}_{}_changelist".format(*info))))
        if model_admin.has_add_permission(request):
            pages.append((f"{name}-add", reverse("admin:{}_{}_add".format(*info))))
        first = model._default_manager.order_by("pk").first()
        if first is not None and model_admin.has_view_or_change_permission(request, first):
            pages.append((f"{name}-change", reverse("admin:{}_{}_change".format(*info), args=[first.pk])))
    return pages


def horizontal_overflow(tab) -> int:
    return tab.evaluate("document.documentElement.scrollWidth") - SCREEN["width"]


# Boxes that scroll sideways inside the page (Django's list of results does, when its columns
# are wider than the room beside the menu and the filters): their right part is hidden too.
_SCROLLING_BOXES = """
[...document.querySelectorAll("body *:not(textarea):not(select):not(input)")]
  .filter(box => ["auto", "scroll"].includes(getComputedStyle(box).overflowX))
  .filter(box => box.scrollWidth > box.clientWidth + 1)
  .map(box => `${box.id || box.className}: ${box.scrollWidth - box.clientWidth}px`)
"""


def hidden_sideways(tab) -> list[str]:
    return tab.evaluate(_SCROLLING_BOXES)


def test_every_console_page_fits_a_1366_pixel_screen(page, operator, console_rows, screenshot):
    too_wide = {}
    pages = console_pages(operator)
    for name, url in pages:
        response = page.goto(url)
        assert response is not None and response.ok, f"{name}: {url} answered {response and response.status}"
        screenshot(page, name)
        if (overflow := horizontal_overflow(page)) > 0:
            too_wide[name] = f"the page, by {overflow}px"
        elif scrolled := hidden_sideways(page):
            too_wide[name] = ", ".join(scrolled)
    assert too_wide == {}, f"pages wider than the screen: {too_wide}"
    assert len(pages) > 40  # every registered model's pages were visited


def test_the_provider_page_fits_with_its_models_inline(page, catalog, screenshot):
    page.goto(reverse("admin:llm_provider_change", args=[catalog.provider.pk]))
    page.wait_for_selector("#provider_form")
    screenshot(page, "provider")
    assert horizontal_overflow(page) <= 0
    assert page.locator("#content").bounding_box()["width"] <= SCREEN["width"]


def test_a_new_users_page_says_its_quota_is_not_saved_yet(page, screenshot):
    page.goto(reverse("admin:accounts_user_add"))
    screenshot(page, "user-add")
    text = page.locator("#content-main").inner_text()
    assert "#1" not in text
    assert horizontal_overflow(page) <= 0


def test_an_existing_users_page_without_a_quota_says_the_defaults_apply(page, screenshot):
    user = make_user("no-quota@example.com")
    page.goto(reverse("admin:accounts_user_change", args=[user.pk]))
    screenshot(page, "user-change")
    quota = page.locator(".inline-group").last.inner_text()
    assert "#1" not in quota
    assert "not saved" in quota.lower()
