"""Every model registered in the admin: its list, its search and its pages render for a superuser."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from accounts.services import api_key_create, audit_event_record
from billing.models import ApiKeyQuota, UserQuota
from billing.services import admission_reserve
from chats.models import Conversation, Message, Template
from llm.selectors import model_target
from nexus.services import runtime_settings_get

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


@pytest.fixture
def superuser_client(client):
    superuser = User.objects.create_superuser("root@example.com", None)
    client.force_login(superuser)
    return client


@pytest.fixture
def populated(catalog, record_call):
    """A row or more of every model the admin lists."""
    user = User.objects.create_user("someone@example.com", None, nickname="Someone")
    key, _ = api_key_create(user=user, name="script")
    UserQuota.objects.create(user=user, calls_per_minute=50)
    ApiKeyQuota.objects.create(api_key=key, monthly_tokens=10_000)
    record_call(user, catalog.primary, api_key=key)
    record_call(user, catalog.backup, outcome="failed")
    admission_reserve(  # still running: an open reservation
        user=user, api_key=None, target=model_target(catalog.primary), input_tokens=10, max_output_tokens=10
    )
    conversation = Conversation.objects.create(owner=user, title="Trip to Porto")
    Message.objects.create(conversation=conversation, role="user", content="Where to eat?")
    Template.objects.create(name="Translator", system_prompt="Translate.")
    audit_event_record(action="test.event", actor=user, target=f"user:{user.pk}")
    RefreshToken.for_user(user)
    runtime_settings_get()


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_project_model_is_registered():
    project_models = {
        model._meta.label
        for model in apps.get_models()
        if model._meta.app_label in ("accounts", "llm", "billing", "chats", "nexus")
    }
    assert project_models <= {model._meta.label for model in admin.site._registry}


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_the_list_renders_with_search_and_the_first_row_opens(superuser_client, populated, model):
    response = superuser_client.get(url(model, "changelist"), follow=True)
    assert response.status_code == 200
    model_admin = admin.site._registry[model]
    if model_admin.search_fields:
        assert (
            superuser_client.get(url(model, "changelist"), {"q": "someone"}, follow=True).status_code == 200
        )
    first = model._default_manager.order_by("pk").first()
    if first is not None:
        assert superuser_client.get(url(model, "change", first.pk)).status_code == 200
    if model_admin.has_add_permission(response.wsgi_request):
        assert superuser_client.get(url(model, "add")).status_code == 200
