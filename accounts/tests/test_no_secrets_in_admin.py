"""No page of the console and no API answer shows a live credential: refresh tokens, API key
secrets, provider keys (plain or encrypted), password hashes.

The console is crawled whole, as a superuser: every changelist and the change page of every
object on it, with one of each kind of secret present.
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.models import Role
from accounts.tests.conftest import bearer

pytestmark = pytest.mark.django_db

PROVIDER_KEY = "sk-provider-secret-0123456789abcdefghij"


@pytest.fixture
def secrets_present(make_user, fake_upstream):
    """A superuser signed in to the console, and one of each secret Nexus holds."""
    root = make_user("root@example.com", role=Role.ADMIN)
    root.is_superuser = root.is_staff = True
    root.save()
    alice = make_user("alice@example.com")
    signed_in = RefreshToken.for_user(alice)  # as /auth/login issues it: outstanding, live
    revoked = RefreshToken.for_user(alice)
    revoked.blacklist()
    _key, key_secret = services.api_key_create(user=alice, name="script")
    model = fake_upstream.make_model(name="gpt-test", api_key=PROVIDER_KEY)
    console = Client()
    console.force_login(root)
    return {
        "console": console,
        "root": root,
        "secrets": {
            "refresh token": str(signed_in),
            "access token": str(signed_in.access_token),
            "blacklisted refresh token": str(revoked),
            "API key secret": key_secret,
            "provider key": PROVIDER_KEY,
            "encrypted provider key": model.provider.api_key_encrypted,
            "password hash": alice.password.split("$")[-1],
        },
    }


def _shown(text: str, secrets: dict[str, str]) -> list[str]:
    # A token is also a credential in part: its signature alone is not, but its payload and
    # signature together are; the last 20 characters stand for the whole.
    return [name for name, secret in secrets.items() if secret in text or secret[-20:] in text]


def _change_urls(console: Client, changelist: str) -> list[str]:
    page = console.get(changelist).content.decode()
    base = changelist.rstrip("/")
    return sorted(set(re.findall(rf'href="({re.escape(base)}/[^"/]+/change/)"', page)))


def test_every_console_page_is_free_of_secrets(secrets_present):
    console, secrets = secrets_present["console"], secrets_present["secrets"]
    assert OutstandingToken.objects.count() >= 2 and BlacklistedToken.objects.count() == 1

    crawled: dict[str, int] = {}
    for model in admin.site._registry:
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        response = console.get(changelist, follow=True)
        assert response.status_code == 200, changelist
        assert _shown(response.content.decode(), secrets) == [], changelist
        crawled[changelist] = 0
        for url in _change_urls(console, changelist):
            page = console.get(url)
            assert page.status_code == 200, url
            assert _shown(page.content.decode(), secrets) == [], url
            crawled[changelist] += 1

    # The crawl reached the pages that hold each secret's row.
    for name in ("outstandingtoken", "blacklistedtoken", "apikey", "provider", "user"):
        assert any(f"/{name}/" in url and count for url, count in crawled.items()), name


def test_the_token_pages_show_ids_users_jti_and_dates(secrets_present):
    console = secrets_present["console"]
    token = OutstandingToken.objects.select_related("user").filter(user__email="alice@example.com").first()
    assert token is not None

    listing = console.get(reverse("admin:token_blacklist_outstandingtoken_changelist")).content.decode()
    page = console.get(
        reverse("admin:token_blacklist_outstandingtoken_change", args=[token.pk])
    ).content.decode()

    for text in (listing, page):
        assert token.jti in text and "alice@example.com" in text
        assert token.token not in text
    blacklisted = BlacklistedToken.objects.get()
    page = console.get(
        reverse("admin:token_blacklist_blacklistedtoken_change", args=[blacklisted.pk])
    ).content.decode()
    assert blacklisted.token.jti in page and blacklisted.token.token not in page


def test_a_search_for_a_token_finds_nothing_by_its_text(secrets_present):
    console, secrets = secrets_present["console"], secrets_present["secrets"]
    refresh = secrets["refresh token"]

    response = console.get(reverse("admin:token_blacklist_outstandingtoken_changelist"), {"q": refresh[-40:]})

    # Searching by the token's text would let staff confirm a token they guessed or found.
    assert response.context["cl"].result_count == 0


def test_no_api_answer_shows_a_live_credential(secrets_present, api):
    root, secrets = secrets_present["root"], secrets_present["secrets"]
    access = str(RefreshToken.for_user(root).access_token)
    api.credentials(**bearer(access))

    for path in ("/keys", "/users", "/users/me", "/llm/providers", "/llm/models", "/system/audit"):
        response = api.get(path)
        assert response.status_code == 200, path
        assert _shown(response.content.decode(), secrets) == [], path
