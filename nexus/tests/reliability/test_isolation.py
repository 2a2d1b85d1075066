"""One user never reaches another's objects, and forged or stale tokens reach nothing.

The id-bearing routes are read from the URL conf, so a new endpoint that takes an id fails
`test_every_id_bearing_route_has_an_isolation_entry` until it gets an entry in ROUTES: a
factory that makes the object for user A, and what user B is told (404: not yours, as if it
did not exist; 403 for the admin-only routes, refused before any lookup).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.authentication import ApiKeyAuthentication
from accounts.models import Role, User
from chats.models import ChatFile, Conversation, Message, MessageRole, MessageStatus, Template
from chats.responses_api import response_token
from llm.models import Model, Provider
from nexus.tests.reliability.conftest import client_with, jwt_for, make_user, rows_snapshot

pytestmark = pytest.mark.django_db

# The admin site is staff-only as a whole (admin.site.has_permission gates every page, and
# test_the_admin_site_sends_a_non_staff_user_to_its_login checks it), so its
# <path:object_id> pages are not API objects of a user.
EXCLUDED_PREFIXES = ("admin/",)


def id_bearing_routes() -> dict[str, URLPattern]:
    """Every route of the URL conf with a path parameter, by its full route string."""
    found: dict[str, URLPattern] = {}

    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern):
                yield route, entry

    for route, pattern in walk(get_resolver().url_patterns, ""):
        if route.startswith(EXCLUDED_PREFIXES):
            continue
        converters = getattr(pattern.pattern, "converters", {}) or {}
        groups = pattern.pattern.regex.groupindex
        if converters or groups:
            found[route] = pattern
    return found


# --- objects of user A --------------------------------------------------------------------


def _conversation(owner: User) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title="A's secret plans")
    Message.objects.create(conversation=conversation, role=MessageRole.USER, content="my secret")
    Message.objects.create(conversation=conversation, role=MessageRole.ASSISTANT, content="noted")
    return conversation


def _conversation_id(owner: User) -> dict[str, Any]:
    return {"conversation_id": _conversation(owner).pk}


def _user_message_id(owner: User) -> dict[str, Any]:
    message = _conversation(owner).messages.filter(role=MessageRole.USER).get()
    return {"message_id": message.pk}


def _streaming_reply_id(owner: User) -> dict[str, Any]:
    """A reply still being written: what stop and the stream would act on for its owner."""
    conversation = _conversation(owner)
    reply = Message.objects.create(
        conversation=conversation, role=MessageRole.ASSISTANT, status=MessageStatus.STREAMING
    )
    return {"message_id": reply.pk}


def _response_id(owner: User) -> dict[str, Any]:
    """A stored /v1/responses exchange: its id names the reply, signed."""
    reply = _conversation(owner).messages.filter(role=MessageRole.ASSISTANT).get()
    return {"response_id": "resp_" + response_token(reply.pk)}


def _template_id(owner: User) -> dict[str, Any]:
    return {"template_id": Template.objects.create(owner=owner, name="mine", system_prompt="secret").pk}


def _file_id(owner: User) -> dict[str, Any]:
    chat_file = ChatFile(owner=owner, name="plans.txt", content_type="text/plain", size=15)
    chat_file.file.save("plans.txt", ContentFile(b"A's secret file"), save=True)
    return {"file_id": chat_file.pk}


def _key_id(owner: User) -> dict[str, Any]:
    key, _ = account_services.api_key_create(user=owner, name="A's key")
    return {"key_id": key.pk}


def _user_id(owner: User) -> dict[str, Any]:
    return {"user_id": owner.pk}


def _provider(owner: User) -> Provider:
    return Provider.objects.create(name="isolated", kind="openai", base_url="http://127.0.0.1:9/v1")


def _provider_pk(owner: User) -> dict[str, Any]:
    return {"pk": _provider(owner).pk}


def _model_pk(owner: User) -> dict[str, Any]:
    return {"pk": Model.objects.create(provider=_provider(owner), name="isolated", upstream_name="x").pk}


def _model_id(owner: User) -> dict[str, Any]:
    """The catalog is every caller's: any key sees any enabled model, and writes nothing."""
    return {
        "model_id": Model.objects.create(
            provider=_provider(owner), name="azure/shared", upstream_name="x"
        ).name
    }


def _revoked_share_token(owner: User) -> dict[str, Any]:
    """A share link is a capability: whoever holds a live token reads it, by design. What
    must hold is that a revoked token reaches nothing, and that nothing can be written there."""
    conversation = _conversation(owner)
    conversation.share_token = "revoked-token-of-a"
    conversation.save(update_fields=["share_token"])
    Conversation.objects.filter(pk=conversation.pk).update(share_token=None)
    return {"token": "revoked-token-of-a"}


@dataclass(frozen=True)
class Entry:
    make: Callable[[User], dict[str, Any]]
    status: int = 404  # what user B gets, on every method the view allows


ROUTES: dict[str, Entry] = {
    "users/<int:user_id>": Entry(_user_id, status=403),
    "keys/<int:key_id>": Entry(_key_id),
    "llm/models/<int:pk>": Entry(_model_pk, status=403),
    "llm/providers/<int:pk>": Entry(_provider_pk, status=403),
    "chat/conversations/<int:conversation_id>": Entry(_conversation_id),
    "chat/conversations/<int:conversation_id>/messages": Entry(_conversation_id),
    "chat/conversations/<int:conversation_id>/share": Entry(_conversation_id),
    "chat/messages/<int:message_id>": Entry(_user_message_id),
    "chat/messages/<int:message_id>/regenerate": Entry(_user_message_id),
    "chat/messages/<int:message_id>/stream": Entry(_streaming_reply_id),
    "chat/messages/<int:message_id>/stop": Entry(_streaming_reply_id),
    "chat/messages/<int:message_id>/select": Entry(_user_message_id),
    "chat/templates/<int:template_id>": Entry(_template_id),
    "chat/files/<int:file_id>": Entry(_file_id),
    "chat/files/<int:file_id>/content": Entry(_file_id),
    "chat/shared/<str:token>": Entry(_revoked_share_token),
    "v1/models/<path:model_id>": Entry(_model_id, status=200),
    "v1/responses/<str:response_id>": Entry(_response_id),
}

# A body valid for every PATCH and POST of these routes, so that no 400 answers before the lookup.
BODY = {"name": "renamed", "title": "renamed", "content": "renamed", "is_active": False}


def allowed_methods(pattern: URLPattern) -> list[str]:
    view_class = pattern.callback.view_class  # type: ignore[attr-defined]
    return [
        method
        for method in ("get", "post", "put", "patch", "delete")
        if callable(getattr(view_class, method, None))
    ]


def takes_api_keys(pattern: URLPattern) -> bool:
    view_class = pattern.callback.view_class  # type: ignore[attr-defined]
    classes = getattr(view_class, "authentication_classes", ())
    return any(issubclass(cls, ApiKeyAuthentication) for cls in classes)


def test_every_id_bearing_route_has_an_isolation_entry():
    routes = set(id_bearing_routes())
    assert routes - set(ROUTES) == set(), "new id-bearing routes: add them to ROUTES in this file"
    assert set(ROUTES) - routes == set(), "ROUTES names routes that are gone: remove them"


@pytest.fixture(autouse=True)
def _uploads_in_a_directory_of_the_test(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def users() -> tuple[User, User]:
    return make_user("a@example.com"), make_user("b@example.com")


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_second_user_cannot_reach_or_change_the_first_users_object(route, users, settings):
    settings.AI_CALLS_PER_MINUTE = 0  # regenerate must be refused for ownership, not the limit
    a, b = users
    pattern = id_bearing_routes()[route]
    entry = ROUTES[route]
    kwargs = entry.make(a)
    url = reverse(pattern.name, kwargs=kwargs) if pattern.name else "/" + route.format(**kwargs)
    _, b_key = account_services.api_key_create(user=b, name="B's key")
    credentials = {"jwt": jwt_for(b)}
    if takes_api_keys(pattern):
        credentials["api key"] = b_key

    before = rows_snapshot()
    for kind, token in credentials.items():
        client = client_with(token)
        for method in allowed_methods(pattern):
            response = getattr(client, method)(url, BODY, format="json")
            assert response.status_code == entry.status, (kind, method.upper(), url, response.content)
            if entry.status == 404:
                assert b"secret" not in response.content
    assert rows_snapshot() == before


def test_the_owner_reaches_the_same_objects(users):
    """The table's objects are reachable by their owner, so a 404 above means isolation, not a typo."""
    a, _ = users
    client = client_with(jwt_for(a))
    for route, entry in ROUTES.items():
        if entry.status != 404 or route.startswith("chat/shared/"):
            continue
        pattern = id_bearing_routes()[route]
        url = reverse(pattern.name, kwargs=entry.make(a))
        if "get" in allowed_methods(pattern) and not route.endswith("/stream"):
            assert client.get(url).status_code == 200, url


def test_the_admin_site_sends_a_non_staff_user_to_its_login(users, client):
    a, b = users
    client.force_login(b)
    response = client.get(f"/admin/accounts/user/{a.pk}/change/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- forged, expired and orphaned tokens ----------------------------------------------------

SIGNING_KEY = str(settings.SIMPLE_JWT["SIGNING_KEY"])
PROTECTED = ("/users/me", "/chat/conversations", "/v1/models", "/keys")


def _claims(user_id: int, *, lifetime: int = 300) -> dict[str, Any]:
    from rest_framework_simplejwt.utils import get_md5_hash_password

    now = int(time.time())
    user = User.objects.get(pk=user_id)
    return {
        "token_type": "access",
        "exp": now + lifetime,
        "iat": now - 10,
        "jti": f"forged-{now}-{user_id}-{lifetime}",
        "user_id": str(user_id),
        "hash_password": get_md5_hash_password(user.password),
    }


def _refused(token: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    for path in PROTECTED:
        response = client.get(path)
        assert response.status_code == 401, (path, response.content)


def test_a_token_signed_with_another_key_is_refused(users):
    a, _ = users
    _refused(jwt.encode(_claims(a.pk), "not-the-signing-key-" + "x" * 32, algorithm="HS256"))


def test_a_token_with_alg_none_is_refused(users):
    a, _ = users
    _refused(jwt.encode(_claims(a.pk), "", algorithm="none"))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_token_with_another_algorithm_and_the_right_key_is_refused(users):
    a, _ = users
    _refused(jwt.encode(_claims(a.pk), SIGNING_KEY, algorithm="HS512"))


def test_an_expired_token_is_refused(users):
    a, _ = users
    _refused(jwt.encode(_claims(a.pk, lifetime=-60), SIGNING_KEY, algorithm="HS256"))


def test_a_well_signed_token_works_so_the_refusals_above_are_about_the_token(users):
    a, _ = users
    token = jwt.encode(_claims(a.pk), SIGNING_KEY, algorithm="HS256")
    response = client_with(token).get("/users/me")
    assert response.status_code == 200
    assert response.json()["email"] == a.email


def test_the_token_of_a_deleted_user_is_refused(users):
    a, _ = users
    token = jwt_for(a)
    a.delete()
    _refused(token)


def test_the_token_of_a_deactivated_user_is_refused(users):
    a, _ = users
    token = jwt_for(a)
    User.objects.filter(pk=a.pk).update(is_active=False)
    _refused(token)


def test_a_refresh_token_is_not_an_access_token(users):
    from rest_framework_simplejwt.tokens import RefreshToken

    a, _ = users
    _refused(str(RefreshToken.for_user(a)))


def test_an_admin_token_is_refused_once_the_admin_is_demoted_on_admin_routes(users):
    admin = make_user("root@example.com", role=Role.ADMIN)
    make_user("other-admin@example.com", role=Role.ADMIN)
    token = jwt_for(admin)
    assert client_with(token).get("/users").status_code == 200
    account_services.user_role_assign(user=admin, role=Role.USER)
    User.objects.filter(pk=admin.pk).update(is_staff=False)
    assert client_with(token).get("/users").status_code == 403
