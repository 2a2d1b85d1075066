"""The Django admin: users by email with roles, groups, API keys shown once, read-only audit."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.contrib.auth.models import Group

from accounts import services
from accounts.models import ApiKey, AuditEvent, Role, User
from accounts.selectors import user_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


def pages(alice) -> list[str]:
    key, _ = services.api_key_create(user=alice, name="script")
    event = services.audit_event_record(action="test.event", actor=alice)
    group = Group.objects.get(name="admin")
    return [
        "/admin/",
        "/admin/accounts/user/",
        f"/admin/accounts/user/{alice.pk}/change/",
        "/admin/accounts/user/add/",
        "/admin/accounts/user/?role=admin",
        "/admin/accounts/user/?role=user&is_active__exact=1&q=alice",
        "/admin/auth/group/",
        f"/admin/auth/group/{group.pk}/change/",
        "/admin/accounts/apikey/",
        "/admin/accounts/apikey/?status=active",
        "/admin/accounts/apikey/add/",
        f"/admin/accounts/apikey/{key.pk}/change/",
        "/admin/accounts/auditevent/",
        "/admin/accounts/auditevent/?action=test.event",
        f"/admin/accounts/auditevent/{event.pk}/change/",
    ]


def test_the_pages_render_for_an_admin_who_is_not_a_superuser(admin_client, admin, alice):
    assert not admin.is_superuser
    for page in pages(alice):
        response = admin_client.get(page)
        assert response.status_code == 200, page


def test_the_pages_are_refused_to_a_user(client, alice):
    client.force_login(alice)
    for page in pages(alice):
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith("/admin/login/")


def test_the_user_list_shows_the_role(admin_client, alice):
    page = admin_client.get("/admin/accounts/user/").content.decode()
    assert "alice@example.com" in page
    assert ">admin<" in page and ">user<" in page


def test_creating_a_key_shows_its_secret_once_and_stores_its_hash(admin_client, admin, alice):
    response = admin_client.post("/admin/accounts/apikey/add/", {"user": alice.pk, "name": "from admin"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    found = re.search(r"nx-[A-Za-z0-9_-]{43,}", response.content.decode())
    assert found is not None
    secret = found.group(0)
    key = ApiKey.objects.get(name="from admin")
    assert key.user == alice
    assert key.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert services.api_key_authenticate(key=secret) == (alice, key)
    assert secret not in admin_client.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()
    assert secret not in admin_client.get("/admin/accounts/apikey/").content.decode()
    assert AuditEvent.objects.get(action="key.created").actor == admin


def test_the_revoke_action_revokes_the_selected_keys(admin_client, alice):
    key, _ = services.api_key_create(user=alice, name="leaked")
    response = admin_client.post(
        "/admin/accounts/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]}, follow=True
    )
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEvent.objects.filter(action="key.revoked", target=f"key:{key.pk}").count() == 1


def test_audit_events_cannot_be_added_changed_or_deleted(admin_client, alice):
    event = services.audit_event_record(action="test.event", actor=alice)
    assert admin_client.get("/admin/accounts/auditevent/add/").status_code == 403
    admin_client.post(f"/admin/accounts/auditevent/{event.pk}/change/", {"action": "edited"})
    assert (
        admin_client.post(f"/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    event.refresh_from_db()
    assert event.action == "test.event"


def inline_data(response) -> dict:
    """What the browser would post for the inlines other apps add to the user page, unchanged."""
    data: dict = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(
            {f"{formset.prefix}-{name}": value for name, value in formset.management_form.initial.items()}
        )
        data[f"{formset.prefix}-TOTAL_FORMS"] = formset.initial_form_count()
        for form in formset.initial_forms:
            for name, field in form.fields.items():
                value = form.initial.get(name, field.initial)
                if value not in (None, False):
                    data[form.add_prefix(name)] = value
    return data


def change_form(client, user: User, **overrides) -> dict:
    data = {
        "email": user.email,
        "nickname": user.nickname,
        "role": user_role(user),
        "is_active": "on" if user.is_active else "",
        **inline_data(client.get(f"/admin/accounts/user/{user.pk}/change/")),
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value != ""}


def test_an_admin_promotes_a_user_in_the_console(admin_client, admin, alice):
    response = admin_client.post(
        f"/admin/accounts/user/{alice.pk}/change/", change_form(admin_client, alice, role="admin")
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert user_role(alice) == "admin" and alice.is_staff
    assert AuditEvent.objects.get(action="user.role_changed").actor == admin


def test_the_console_keeps_the_last_admin(admin_client, admin):
    for change in ({"role": "user"}, {"is_active": ""}):
        response = admin_client.post(
            f"/admin/accounts/user/{admin.pk}/change/", change_form(admin_client, admin, **change)
        )
        assert response.status_code == 200  # the form again, with the error
        assert "last active admin" in response.content.decode()
    admin.refresh_from_db()
    assert admin.is_active and user_role(admin) == "admin"
    assert admin_client.get(f"/admin/accounts/user/{admin.pk}/delete/").status_code == 403


def test_a_user_added_in_the_console_gets_the_chosen_role(admin_client):
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "New@Example.com",
            "nickname": "",
            "role": "user",
            "password1": "Console-Made-Pass-5",
            "password2": "Console-Made-Pass-5",
            **inline_data(admin_client.get("/admin/accounts/user/add/")),
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    assert user_role(user) == "user"
    assert user.password.startswith("argon2")


def test_deleting_a_user_in_the_console_keeps_their_audit_trail(admin_client, admin, alice):
    services.api_key_create(user=alice, name="k")
    response = admin_client.post(f"/admin/accounts/user/{alice.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(email="alice@example.com").exists()
    deleted = AuditEvent.objects.get(action="user.deleted")
    assert deleted.actor == admin
    assert deleted.metadata["email"] == "alice@example.com"


def test_a_role_filter_lists_admins_only(admin_client, make_user):
    make_user("boss@example.com", role=Role.ADMIN)
    page = admin_client.get("/admin/accounts/user/?role=admin").content.decode()
    assert "boss@example.com" in page and "alice@example.com" not in page
