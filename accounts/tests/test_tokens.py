"""JWT sessions: lifetimes, tampering, expiry, refresh rotation, logout, revoked accounts."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from freezegun import freeze_time
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts import tokens
from accounts.models import AuditEvent
from accounts.tests.conftest import PASSWORD, bearer

pytestmark = pytest.mark.django_db


def test_tokens_live_15_minutes_and_7_days_by_default(login, alice):
    pair = login("alice@example.com")
    access = AccessToken(pair["access"])
    refresh = RefreshToken(pair["refresh"])
    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh["exp"] - refresh["iat"] == 7 * 24 * 3600


def test_a_tampered_token_is_rejected(api, login, alice, bob):
    access = login("alice@example.com")["access"]
    header, _, signature = access.split(".")
    # Re-encode the payload as Bob's: the signature no longer matches.
    forged_payload = AccessToken(access).payload | {"user_id": str(bob.pk)}
    forged = base64.urlsafe_b64encode(json.dumps(forged_payload).encode()).rstrip(b"=").decode()
    for token in (f"{header}.{forged}.{signature}", access[:-3] + ("AAA" if access[-3:] != "AAA" else "BBB")):
        response = api.get("/users/me", **bearer(token))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token_not_valid"


def test_an_expired_token_is_rejected_once_the_clock_moves_past_its_lifetime(api, login, alice):
    access = login("alice@example.com")["access"]
    assert api.get("/users/me", **bearer(access)).status_code == 200
    with freeze_time(datetime.now(UTC) + timedelta(minutes=16), tick=True):
        response = api.get("/users/me", **bearer(access))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"


def test_an_expired_refresh_token_cannot_refresh(api, login, alice):
    refresh = login("alice@example.com")["refresh"]
    with freeze_time(datetime.now(UTC) + timedelta(days=7, minutes=1), tick=True):
        response = api.post("/auth/refresh", {"refresh": refresh})
    assert response.status_code == 401


def test_refresh_rotates_and_rejects_reuse(api, login, alice):
    first = login("alice@example.com")
    response = api.post("/auth/refresh", {"refresh": first["refresh"]})
    assert response.status_code == 200
    second = response.json()
    assert set(second) == {"access", "refresh"}
    assert second["refresh"] != first["refresh"]
    assert api.get("/users/me", **bearer(second["access"])).status_code == 200

    reuse = api.post("/auth/refresh", {"refresh": first["refresh"]})
    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "token_not_valid"
    assert api.post("/auth/refresh", {"refresh": second["refresh"]}).status_code == 200


def test_the_rotated_refresh_token_is_blacklisted(api, login, alice):
    first = login("alice@example.com")
    api.post("/auth/refresh", {"refresh": first["refresh"]})
    jti = RefreshToken(first["refresh"], verify=False)["jti"]
    assert BlacklistedToken.objects.filter(token__jti=jti).exists()


def test_an_access_token_is_not_a_refresh_token(api, login, alice):
    access = login("alice@example.com")["access"]
    assert api.post("/auth/refresh", {"refresh": access}).status_code == 401


def test_garbage_refresh_is_401_not_500(api):
    assert api.post("/auth/refresh", {"refresh": "garbage"}).status_code == 401


def test_logout_ends_both_tokens_on_every_endpoint(api, login, alice):
    pair = login("alice@example.com")
    response = api.post("/auth/logout", {"refresh": pair["refresh"]}, **bearer(pair["access"]))
    assert response.status_code == 204
    for path in ("/users/me", "/keys"):
        denied = api.get(path, **bearer(pair["access"]))
        assert denied.status_code == 401
        assert denied.json()["error"]["code"] == "token_not_valid"
    assert api.post("/auth/refresh", {"refresh": pair["refresh"]}).status_code == 401
    assert api.post("/auth/logout", {"refresh": pair["refresh"]}, **bearer(pair["access"])).status_code == 401
    assert AuditEvent.objects.filter(action="user.logged_out", actor=alice).count() == 1


def test_logout_denies_the_access_token_only_until_it_expires(api, login, alice):
    pair = login("alice@example.com")
    api.post("/auth/logout", {"refresh": pair["refresh"]}, **bearer(pair["access"]))
    jti = AccessToken(pair["access"])["jti"]
    ttl = cache.ttl(f"accounts:denied-access:{jti}")  # type: ignore[attr-defined]  # django-redis
    assert 0 < ttl <= 15 * 60 + 1


def test_logout_leaves_other_sessions_alone(api, login, alice):
    first, second = login("alice@example.com"), login("alice@example.com")
    api.post("/auth/logout", {"refresh": first["refresh"]}, **bearer(first["access"]))
    assert api.get("/users/me", **bearer(second["access"])).status_code == 200
    assert api.post("/auth/refresh", {"refresh": second["refresh"]}).status_code == 200


def test_logout_needs_the_access_token(api, login, alice):
    pair = login("alice@example.com")
    assert api.post("/auth/logout", {"refresh": pair["refresh"]}).status_code == 401


def test_logout_refuses_someone_elses_refresh_token(api, login, alice, bob):
    mine, theirs = login("alice@example.com"), login("bob@example.com")
    response = api.post("/auth/logout", {"refresh": theirs["refresh"]}, **bearer(mine["access"]))
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"refresh"}
    assert api.post("/auth/refresh", {"refresh": theirs["refresh"]}).status_code == 200
    assert api.get("/users/me", **bearer(mine["access"])).status_code == 200


def test_logout_with_an_expired_refresh_token_still_ends_the_access_token(api, alice):
    refresh = RefreshToken.for_user(alice)
    refresh.set_exp(from_time=datetime.now(UTC) - timedelta(days=8))
    access = str(RefreshToken.for_user(alice).access_token)
    response = api.post("/auth/logout", {"refresh": str(refresh)}, **bearer(access))
    assert response.status_code == 204
    assert api.get("/users/me", **bearer(access)).status_code == 401


def test_a_token_of_a_deactivated_user_is_rejected(api, login, alice):
    pair = login("alice@example.com")
    alice.is_active = False
    alice.save()
    assert api.get("/users/me", **bearer(pair["access"])).status_code == 401
    assert api.post("/auth/refresh", {"refresh": pair["refresh"]}).status_code == 401


def test_a_token_of_a_deleted_user_is_rejected(api, login, alice):
    pair = login("alice@example.com")
    alice.delete()
    assert api.get("/users/me", **bearer(pair["access"])).status_code == 401
    assert api.post("/auth/refresh", {"refresh": pair["refresh"]}).status_code == 401


def test_a_changed_password_ends_outstanding_access_tokens(api, login, alice):
    pair = login("alice@example.com")
    alice.set_password("A-Whole-New-Secret-7")
    alice.save()
    assert api.get("/users/me", **bearer(pair["access"])).status_code == 401


def test_refresh_records_each_new_token_as_outstanding(api, login, alice):
    pair = login("alice@example.com")
    new = api.post("/auth/refresh", {"refresh": pair["refresh"]}).json()
    jti = RefreshToken(new["refresh"])["jti"]
    assert OutstandingToken.objects.filter(jti=jti, user=alice).exists()


def test_a_token_pair_issued_by_the_service_works(api, alice):
    pair = tokens.token_pair_issue(user=alice)
    assert api.get("/users/me", **bearer(pair.access)).status_code == 200


UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
}


def test_an_unreachable_cache_fails_closed_with_503(api, alice, settings):
    pair = tokens.token_pair_issue(user=alice)
    settings.CACHES = UNREACHABLE_REDIS
    response = api.get("/users/me", **bearer(pair.access))
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["type"] == "service_unavailable_error"
    logout = api.post("/auth/logout", {"refresh": pair.refresh}, **bearer(pair.access))
    assert logout.status_code == 503


def test_login_fails_closed_with_503_when_the_throttle_cannot_count(api, alice, settings):
    settings.CACHES = UNREACHABLE_REDIS
    response = api.post("/auth/login", {"email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"


@pytest.mark.django_db(transaction=True)
def test_a_user_kept_by_the_process_is_dropped_when_their_password_or_status_changes(alice):
    from rest_framework.exceptions import AuthenticationFailed

    raw = str(AccessToken.for_user(alice))
    assert tokens.access_token_authenticate(raw)[0].pk == alice.pk  # loads and keeps alice
    assert tokens.access_token_authenticate(raw)[0].pk == alice.pk

    alice.set_password("another-long-password-1")
    alice.save()
    with pytest.raises(AuthenticationFailed, match="password was changed"):
        tokens.access_token_authenticate(raw)

    fresh = str(AccessToken.for_user(alice))
    tokens.access_token_authenticate(fresh)
    alice.is_active = False
    alice.save()
    with pytest.raises(AuthenticationFailed, match="inactive"):
        tokens.access_token_authenticate(fresh)
