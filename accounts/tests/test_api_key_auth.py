"""`Authorization: Bearer nx-...` on the AI endpoints, and bearer_authenticate for the WebSocket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from freezegun import freeze_time
from rest_framework.exceptions import AuthenticationFailed

from accounts import services
from accounts.models import ApiKey
from accounts.tests.conftest import bearer

pytestmark = [pytest.mark.django_db, pytest.mark.urls("accounts.tests.urls")]

WHOAMI = "/test/ai/whoami"


@pytest.fixture
def alice_key(alice) -> tuple[ApiKey, str]:
    return services.api_key_create(user=alice, name="script")


def test_a_key_authenticates_as_its_owner_with_the_key_as_auth(api, alice, alice_key):
    key, secret = alice_key
    response = api.get(WHOAMI, **bearer(secret))
    assert response.status_code == 200
    assert response.json() == {"user": alice.pk, "key": key.pk}


def test_a_jwt_works_on_the_same_endpoint(api, login, alice):
    response = api.get(WHOAMI, **bearer(login("alice@example.com")["access"]))
    assert response.json() == {"user": alice.pk, "key": None}


def test_an_unknown_key_is_401(api, alice_key):
    response = api.get(WHOAMI, **bearer("nx-" + "x" * 43))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert "WWW-Authenticate" in response


def test_a_revoked_key_fails_on_its_next_request(api, alice_key):
    key, secret = alice_key
    assert api.get(WHOAMI, **bearer(secret)).status_code == 200
    services.api_key_revoke(key=key)
    response = api.get(WHOAMI, **bearer(secret))
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_an_expired_key_is_401(api, alice):
    _, secret = services.api_key_create(
        user=alice, name="short", expires_at=datetime.now(UTC) + timedelta(hours=1)
    )
    assert api.get(WHOAMI, **bearer(secret)).status_code == 200
    with freeze_time(datetime.now(UTC) + timedelta(hours=2), tick=True):
        assert api.get(WHOAMI, **bearer(secret)).status_code == 401


def test_a_key_of_an_inactive_user_is_401(api, alice, alice_key):
    alice.is_active = False
    alice.save()
    assert api.get(WHOAMI, **bearer(alice_key[1])).status_code == 401


def test_a_key_of_a_deleted_user_is_401(api, alice, alice_key):
    alice.delete()
    assert api.get(WHOAMI, **bearer(alice_key[1])).status_code == 401


def test_last_used_is_written_at_most_once_a_minute(api, alice_key, django_assert_num_queries):
    key, secret = alice_key
    api.get(WHOAMI, **bearer(secret))
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the key lookup, and no write
        api.get(WHOAMI, **bearer(secret))
    key.refresh_from_db()
    assert key.last_used_at == first
    with freeze_time(datetime.now(UTC) + timedelta(seconds=61), tick=True):
        cache.delete(f"accounts:key-used:{key.pk}")  # the cache entry's own expiry, in real time
        api.get(WHOAMI, **bearer(secret))
    key.refresh_from_db()
    assert key.last_used_at > first


def test_last_used_falls_back_on_the_conditional_update_without_the_cache(api, alice_key, settings):
    key, secret = alice_key
    api.get(WHOAMI, **bearer(secret))
    key.refresh_from_db()
    first = key.last_used_at
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    api.get(WHOAMI, **bearer(secret))
    key.refresh_from_db()
    assert key.last_used_at == first


def test_bearer_authenticate_takes_a_jwt_or_a_key(login, alice, alice_key):
    access = login("alice@example.com")["access"]
    assert services.bearer_authenticate(token=access) == (alice, None)
    user, key = services.bearer_authenticate(token=alice_key[1])
    assert user == alice
    assert key == alice_key[0]


@pytest.mark.parametrize("token", ["", "garbage", "nx-unknown", "a.b.c"])
def test_bearer_authenticate_refuses_anything_else(alice, token):
    with pytest.raises(AuthenticationFailed):
        services.bearer_authenticate(token=token)


def test_bearer_authenticate_refuses_a_logged_out_token(api, login, alice):
    pair = login("alice@example.com")
    api.post("/auth/logout", {"refresh": pair["refresh"]}, **bearer(pair["access"]))
    with pytest.raises(AuthenticationFailed):
        services.bearer_authenticate(token=pair["access"])


def test_bearer_authenticate_refuses_a_revoked_key(alice_key):
    services.api_key_revoke(key=alice_key[0])
    with pytest.raises(AuthenticationFailed):
        services.bearer_authenticate(token=alice_key[1])


@pytest.mark.django_db(transaction=True)
def test_keys_kept_by_the_process_are_dropped_as_soon_as_they_change(
    alice, alice_key, django_assert_num_queries
):
    key, secret = alice_key
    services.api_key_authenticate(key=secret)  # loads and keeps the key; records its use
    with django_assert_num_queries(0):
        user, authenticated = services.api_key_authenticate(key=secret)
    assert (user.pk, authenticated.pk) == (alice.pk, key.pk)

    alice.is_active = False
    alice.save()
    with pytest.raises(AuthenticationFailed, match="inactive"):
        services.api_key_authenticate(key=secret)
    alice.is_active = True
    alice.save()
    services.api_key_authenticate(key=secret)

    services.api_key_revoke(key=key)  # a queryset update, no signal
    with pytest.raises(AuthenticationFailed, match="revoked"):
        services.api_key_authenticate(key=secret)


@pytest.mark.django_db(transaction=True)
def test_the_user_a_request_gets_is_its_own_copy(alice, alice_key):
    _, secret = alice_key
    first, _ = services.api_key_authenticate(key=secret)
    first.nickname = "changed by a request"
    second, _ = services.api_key_authenticate(key=secret)
    assert second.nickname != "changed by a request"
