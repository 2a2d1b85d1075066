"""The admin: provider keys are write-only, prices are checked, and a connection test reports back."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages

from llm import crypto
from llm.models import Model, Provider

pytestmark = pytest.mark.django_db

KEY = "sk-admin-secret-0123456789abcdef"


@pytest.fixture
def admin_client(client):
    admin = get_user_model().objects.create_superuser(email="admin@example.com", password="a-long-password-1")
    client.force_login(admin)
    return client


def provider_form(**fields):
    data = {
        "name": "openai",
        "kind": "openai",
        "base_url": "",
        "api_key": "",
        "api_version": "",
        "extra_headers": "{}",
        "connect_timeout": "10",
        "first_token_timeout": "60",
        "idle_timeout": "60",
        "total_timeout": "600",
        "max_retries": "2",
        "enabled": "on",
        "models-TOTAL_FORMS": "0",
        "models-INITIAL_FORMS": "0",
        "models-MIN_NUM_FORMS": "0",
        "models-MAX_NUM_FORMS": "1000",
    }
    data.update(fields)
    return data


def test_a_key_set_in_the_admin_is_stored_encrypted_and_never_shown(admin_client):
    response = admin_client.post("/admin/llm/provider/add/", provider_form(api_key=KEY))

    assert response.status_code == 302
    provider = Provider.objects.get(name="openai")
    assert crypto.decrypt(provider.api_key_encrypted) == KEY
    page = admin_client.get(f"/admin/llm/provider/{provider.pk}/change/").content.decode()
    assert 'type="password"' in page
    assert KEY not in page and provider.api_key_encrypted not in page


def test_a_blank_key_keeps_the_old_one_and_the_box_removes_it(admin_client):
    provider = Provider.objects.create(name="openai", kind="openai", api_key_encrypted=crypto.encrypt(KEY))
    url = f"/admin/llm/provider/{provider.pk}/change/"

    assert admin_client.post(url, provider_form(max_retries="1")).status_code == 302
    provider.refresh_from_db()
    assert crypto.decrypt(provider.api_key_encrypted) == KEY
    assert provider.max_retries == 1

    assert admin_client.post(url, provider_form(clear_api_key="on")).status_code == 302
    provider.refresh_from_db()
    assert provider.api_key_encrypted == ""


def test_a_negative_price_is_a_form_error(admin_client):
    provider = Provider.objects.create(name="p", kind="demo")

    response = admin_client.post(
        "/admin/llm/model/add/",
        {
            "name": "m",
            "provider": provider.pk,
            "upstream_name": "m",
            "display_name": "",
            "enabled": "on",
            "input_price_per_million": "-1",
            "output_price_per_million": "1",
            "context_window": "8192",
            "max_output_tokens": "1024",
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
        },
    )

    assert response.status_code == 200
    assert "greater than or equal to 0" in response.content.decode()
    assert not Model.objects.exists()


def test_the_catalog_pages_show_models_under_their_provider(admin_client):
    provider = Provider.objects.create(name="p", kind="demo")
    Model.objects.create(provider=provider, name="demo-model", upstream_name="demo")

    assert admin_client.get("/admin/llm/provider/").status_code == 200
    assert admin_client.get("/admin/llm/model/").status_code == 200
    assert "demo-model" in admin_client.get(f"/admin/llm/provider/{provider.pk}/change/").content.decode()


def run_connection_test(admin_client, *providers):
    response = admin_client.post(
        "/admin/llm/provider/",
        {"action": "test_connection", "_selected_action": [provider.pk for provider in providers]},
    )
    assert response.status_code == 302
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_connection_test_reports_the_latency(admin_client, fake_upstream):
    model = fake_upstream.make_model(kind="anthropic", name="claude-test")

    [message] = run_connection_test(admin_client, model.provider)

    assert "answered in" in message and " ms" in message
    assert fake_upstream.requests()[0]["body"]["max_tokens"] == 1


def test_the_connection_test_reports_the_error_without_the_key(admin_client, fake_upstream):
    fake_upstream.configure(api_key="sk-the-right-one")
    model = fake_upstream.make_model(kind="openai", name="gpt-test", api_key=KEY)

    [message] = run_connection_test(admin_client, model.provider)

    assert "upstream_auth" in message
    assert KEY not in message


def test_the_connection_test_needs_a_model(admin_client):
    provider = Provider.objects.create(name="empty", kind="openai")

    [message] = run_connection_test(admin_client, provider)

    assert "add a model first" in message
