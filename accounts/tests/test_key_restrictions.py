"""API keys limited to some models and to client address ranges: set from /keys, the admin and
`createapikey`; a call outside them is 403 with its own code, on every surface, at once."""

from __future__ import annotations

import io

import httpx
import openai
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.models import ApiKey, AuditEvent, Role
from accounts.tests.conftest import bearer

# --- Setting them ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_key_is_created_with_its_models_and_ranges_normalised(api, alice):
    api.credentials(**bearer(str(RefreshToken.for_user(alice).access_token)))

    response = api.post(
        "/keys",
        {
            "name": "ci",
            "allowed_models": ["gpt-test", " gpt-test", "claude-test"],
            "allowed_networks": ["203.0.113.7", "2001:DB8::/32"],
        },
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["key"].startswith("nx-")
    assert body["allowed_models"] == ["gpt-test", "claude-test"]
    assert body["allowed_networks"] == ["203.0.113.7/32", "2001:db8::/32"]
    key = ApiKey.objects.get(pk=body["id"])
    assert (key.allowed_models, key.allowed_networks) == (body["allowed_models"], body["allowed_networks"])
    assert api.get(f"/keys/{key.pk}").json()["allowed_networks"] == ["203.0.113.7/32", "2001:db8::/32"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "networks", [["10.0.0.0/33"], ["not-an-address"], ["10.0.0.1/8"], ["2001:db8::/129"], "10.0.0.0/8"]
)
def test_a_bad_address_range_is_a_400_naming_the_field(api, alice, networks):
    api.credentials(**bearer(str(RefreshToken.for_user(alice).access_token)))

    response = api.post("/keys", {"name": "ci", "allowed_networks": networks})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "allowed_networks"
    assert "allowed_networks" in error["fields"]
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_patch_changes_only_the_restrictions_sent_and_an_empty_list_lifts_one(api, alice):
    api.credentials(**bearer(str(RefreshToken.for_user(alice).access_token)))
    key, _secret = services.api_key_create(
        user=alice, name="ci", allowed_models=["gpt-test"], allowed_networks=["10.0.0.0/8"]
    )

    narrowed = api.patch(f"/keys/{key.pk}", {"allowed_networks": ["10.1.0.0/16"]})
    lifted = api.patch(f"/keys/{key.pk}", {"allowed_models": []})
    bad = api.patch(f"/keys/{key.pk}", {"allowed_networks": ["10.1.0.0/99"]})

    assert narrowed.status_code == 200 and narrowed.json()["allowed_networks"] == ["10.1.0.0/16"]
    assert narrowed.json()["allowed_models"] == ["gpt-test"] and narrowed.json()["name"] == "ci"
    assert lifted.json()["allowed_models"] == [] and lifted.json()["allowed_networks"] == ["10.1.0.0/16"]
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "allowed_networks"
    key.refresh_from_db()
    assert (key.allowed_models, key.allowed_networks) == ([], ["10.1.0.0/16"])
    assert AuditEvent.objects.filter(action="key.restricted", target=f"key:{key.pk}").count() == 2


@pytest.mark.django_db
def test_createapikey_takes_models_and_networks(alice):
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "createapikey",
        "--email",
        alice.email,
        "--name",
        "deploy",
        "--model",
        "gpt-test",
        "--network",
        "192.0.2.0/24",
        "--network",
        "2001:db8::/48",
        stdout=out,
        stderr=err,
    )

    key = ApiKey.objects.get(name="deploy")
    assert key.allowed_models == ["gpt-test"]
    assert key.allowed_networks == ["192.0.2.0/24", "2001:db8::/48"]
    assert out.getvalue().strip().startswith("nx-")


@pytest.mark.django_db
def test_createapikey_refuses_a_bad_range_naming_the_option(alice):
    with pytest.raises(CommandError, match="--network"):
        call_command("createapikey", "--email", alice.email, "--name", "x", "--network", "300.1.1.1/8")

    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_the_admin_sets_and_changes_the_restrictions(make_user, alice):
    root = make_user("root@example.com", role=Role.ADMIN)
    root.is_superuser = root.is_staff = True
    root.save()
    console = Client()
    console.force_login(root)

    added = console.post(
        "/admin/accounts/apikey/add/",
        {
            "user": alice.pk,
            "name": "console",
            "allowed_models": "gpt-test",
            "allowed_networks": "192.0.2.0/24",
        },
    )
    key = ApiKey.objects.get(name="console")
    refused = console.post(
        f"/admin/accounts/apikey/{key.pk}/change/",
        {"name": "console", "allowed_models": "gpt-test", "allowed_networks": "192.0.2.0/40"},
    )
    changed = console.post(
        f"/admin/accounts/apikey/{key.pk}/change/",
        {"name": "console", "allowed_models": "gpt-test\nclaude-test", "allowed_networks": ""},
    )

    assert added.status_code == 200 and "nx-" in added.content.decode()  # the one-time page
    assert refused.status_code == 200 and "not an address range" in refused.content.decode()
    assert changed.status_code == 302
    key.refresh_from_db()
    assert (key.allowed_models, key.allowed_networks) == (["gpt-test", "claude-test"], [])
    assert AuditEvent.objects.filter(action="key.restricted", target=f"key:{key.pk}").exists()


# --- Enforcing them, in process: IPv6 and what the socket reports --------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("networks", "address", "allowed"),
    [
        (["2001:db8::/32"], "2001:db8:1::5", True),
        (["2001:db8::/32"], "2001:db9::5", False),
        (["192.0.2.0/24"], "::ffff:192.0.2.10", True),  # IPv4 through a dual-stack socket
        (["192.0.2.0/24"], "198.51.100.1", False),
        (["192.0.2.0/24", "2001:db8::/32"], "192.0.2.200", True),
        (["192.0.2.0/24"], "", False),  # no address known: a restricted key fails closed
    ],
)
def test_the_address_check_reads_ipv4_and_ipv6(alice, fake_upstream, networks, address, allowed):
    fake_upstream.make_model(name="gpt-test")
    _key, secret = services.api_key_create(user=alice, name="ci", allowed_networks=networks)
    client = APIClient(REMOTE_ADDR=address)

    response = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {secret}")

    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "key_address_not_allowed"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("forwarded", "allowed"),
    [
        ("192.0.2.10", True),  # what the trusted proxy saw
        ("192.0.2.10, 198.51.100.7", False),  # the client typed an allowed address on the left
        ("", False),  # not through the proxy: the socket's own address, outside the range
    ],
)
def test_behind_a_trusted_proxy_the_range_is_checked_against_the_address_it_vouches_for(
    settings, alice, fake_upstream, forwarded, allowed
):
    settings.TRUSTED_PROXY_COUNT = 1
    fake_upstream.make_model(name="gpt-test")
    _key, secret = services.api_key_create(user=alice, name="ci", allowed_networks=["192.0.2.0/24"])
    client = APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)

    response = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == (200 if allowed else 403)


# --- Enforcing them, on live servers ----------------------------------------------------------


@pytest.fixture
def restricted(module_server, fake_upstream, alice, transactional_db):
    """A live server, two models, and a key limited to one model and to the loopback range."""
    fake_upstream.make_model(name="gpt-test", max_output_tokens=64)
    fake_upstream.make_model(name="other-model", max_output_tokens=64)
    fake_upstream.configure(reply="allowed")
    key, secret = services.api_key_create(
        user=alice, name="ci", allowed_models=["gpt-test"], allowed_networks=["127.0.0.0/8"]
    )
    sdk = openai.OpenAI(base_url=f"{module_server.url}/v1", api_key=secret, max_retries=0, timeout=10)
    return key, secret, sdk, module_server


def _send(server, secret: str, model: str) -> httpx.Response:
    with server.client() as http:
        return http.post(
            "/chat/send",
            json={"message": "hi", "model": model},
            headers={"Authorization": f"Bearer {secret}"},
        )


@pytest.mark.live
def test_a_restricted_key_reaches_its_model_from_its_range(restricted):
    _key, secret, sdk, server = restricted

    completion = sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    sent = _send(server, secret, "gpt-test")

    assert completion.choices[0].message.content == "allowed"
    assert sent.status_code == 200 and "event: done" in sent.text


@pytest.mark.live
def test_another_model_is_refused_on_every_surface(restricted):
    _key, secret, sdk, server = restricted

    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk.chat.completions.create(model="other-model", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.PermissionDeniedError) as refused_streaming:
        sdk.chat.completions.create(
            model="other-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    sent = _send(server, secret, "other-model")

    for error in (refused.value, refused_streaming.value):
        assert error.status_code == 403
        assert error.response.json()["error"]["code"] == "key_model_not_allowed"
        assert "other-model" in error.response.json()["error"]["message"]
    assert sent.status_code == 403 and sent.json()["error"]["code"] == "key_model_not_allowed"


@pytest.mark.live
def test_the_model_list_shows_a_restricted_key_its_models_only(restricted):
    _key, _secret, sdk, _server = restricted

    assert [model.id for model in sdk.models.list()] == ["gpt-test"]
    assert sdk.models.retrieve("gpt-test").id == "gpt-test"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("other-model")


@pytest.mark.live
def test_a_key_used_outside_its_ranges_is_refused_and_a_change_holds_at_once(restricted):
    key, secret, sdk, server = restricted
    # Served once under the old restriction, so the server process holds the key in its cache.
    sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])

    services.api_key_update(key=key, allowed_networks=["203.0.113.0/24"])
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    sent = _send(server, secret, "gpt-test")
    services.api_key_update(key=key, allowed_networks=["127.0.0.1/32", "::1/128"])
    again = sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])

    assert refused.value.status_code == 403
    assert refused.value.response.json()["error"]["code"] == "key_address_not_allowed"
    assert sent.status_code == 403 and sent.json()["error"]["code"] == "key_address_not_allowed"
    assert again.choices[0].message.content == "allowed"


@pytest.mark.live
def test_an_unrestricted_key_is_unaffected(restricted, alice):
    _key, _secret, _sdk, server = restricted
    _other, free = services.api_key_create(user=alice, name="free")
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=free, max_retries=0, timeout=10)

    assert {"gpt-test", "other-model"} <= {model.id for model in sdk.models.list()}
    reply = sdk.chat.completions.create(model="other-model", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "allowed"
