"""Roles on Django groups, and the admin endpoints GET /users, GET/PATCH /users/{id}."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from rest_framework.exceptions import PermissionDenied

from accounts import services
from accounts.errors import LastAdmin
from accounts.models import AuditEvent, Role, User
from accounts.selectors import user_role
from accounts.tests.conftest import bearer

pytestmark = pytest.mark.django_db


def test_migrate_creates_both_roles_and_the_admin_role_holds_every_permission():
    # A transactional test before this one may have flushed the rows: run the migration again,
    # on the models as they were at it, as `migrate` runs it.
    Group.objects.filter(name__in=["admin", "user"]).delete()
    state = MigrationExecutor(connection).loader.project_state(("accounts", "0003_create_roles"))
    import_module("accounts.migrations.0003_create_roles").create_roles(state.apps, None)
    admin, user = Group.objects.get(name="admin"), Group.objects.get(name="user")
    assert admin.permissions.count() == Permission.objects.count()
    assert admin.permissions.filter(codename="administer", content_type__app_label="accounts").exists()
    assert user.permissions.count() == 0


def test_admins_are_staff_and_users_are_not(admin, alice):
    assert admin.is_staff and user_role(admin) == "admin"
    assert not alice.is_staff and user_role(alice) == "user"
    assert admin.has_perm("accounts.administer")
    assert not alice.has_perm("accounts.administer")


def test_a_superuser_is_an_admin():
    root = User.objects.create_superuser("root@example.com", "Root-Password-123")
    assert user_role(root) == "admin"


def test_users_cannot_reach_the_admin_endpoints(client_for, alice, bob):
    client = client_for(alice)
    for method, path, data in (
        ("get", "/users", None),
        ("get", f"/users/{bob.pk}", None),
        ("patch", f"/users/{bob.pk}", {"role": "admin"}),
        ("patch", f"/users/{alice.pk}", {"role": "admin"}),
        ("get", "/system/audit", None),
    ):
        response = getattr(client, method)(path, data)
        assert response.status_code == 403, path
    alice.refresh_from_db()
    assert user_role(alice) == "user"


def test_the_admin_lists_users_paginated_and_searches_by_email(
    client_for, admin, make_user, django_assert_max_num_queries
):
    for n in range(5):
        make_user(f"member{n}@example.com")
    make_user("other@corp.example", role=Role.ADMIN)
    client = client_for(admin)
    with django_assert_max_num_queries(8):
        response = client.get("/users", {"page_size": 3})
    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 7
    assert len(body["results"]) == 3
    assert {"id", "email", "nickname", "role", "is_active", "created_at", "last_login"} == set(
        body["results"][0]
    )
    found = client.get("/users", {"search": "CORP"}).json()
    assert [(u["email"], u["role"]) for u in found["results"]] == [("other@corp.example", "admin")]


def test_a_user_search_with_a_null_character_is_400_not_a_server_error(client_for, admin):
    response = client_for(admin).get("/users", {"search": "a\x00b"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "search"


def test_the_user_list_makes_no_query_per_user(client_for, admin, make_user, django_assert_num_queries):
    client = client_for(admin)
    make_user("one@example.com")
    with CaptureQueriesContext(connection) as few:
        client.get("/users")
    baseline = len(few)
    for n in range(6):
        make_user(f"more{n}@example.com", role=Role.ADMIN if n % 2 else Role.USER)
    with django_assert_num_queries(baseline):
        client.get("/users")


def test_the_admin_promotes_a_user_who_becomes_staff(client_for, admin, alice):
    response = client_for(admin).patch(f"/users/{alice.pk}", {"role": "admin"})
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    alice.refresh_from_db()
    assert alice.is_staff
    assert list(alice.groups.values_list("name", flat=True)) == ["admin"]
    event = AuditEvent.objects.get(action="user.role_changed")
    assert (event.actor, event.target, event.metadata["from"], event.metadata["to"]) == (
        admin,
        f"user:{alice.pk}",
        "user",
        "admin",
    )


def test_a_demoted_admin_loses_staff_and_the_admin_endpoints_at_once(client_for, admin, make_user):
    other = make_user("other-admin@example.com", role=Role.ADMIN)
    other_client = client_for(other)
    assert other_client.get("/users").status_code == 200
    assert client_for(admin).patch(f"/users/{other.pk}", {"role": "user"}).status_code == 200
    other.refresh_from_db()
    assert not other.is_staff
    assert other_client.get("/users").status_code == 403


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(client_for, admin):
    client = client_for(admin)
    for change in ({"role": "user"}, {"is_active": False}):
        response = client.patch(f"/users/{admin.pk}", change)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "last_admin"
    admin.refresh_from_db()
    assert admin.is_active and user_role(admin) == "admin"


def test_an_inactive_admin_does_not_count_as_another_admin(client_for, admin, make_user):
    make_user("dormant@example.com", role=Role.ADMIN, is_active=False)
    assert client_for(admin).patch(f"/users/{admin.pk}", {"role": "user"}).status_code == 409


def test_an_admin_may_step_down_while_another_remains(client_for, admin, make_user):
    make_user("second@example.com", role=Role.ADMIN)
    response = client_for(admin).patch(f"/users/{admin.pk}", {"role": "user"})
    assert response.status_code == 200
    assert response.json()["role"] == "user"


def test_nobody_raises_their_own_role(alice, admin):
    with pytest.raises(PermissionDenied):
        services.user_admin_update(actor=alice, user=alice, role=Role.ADMIN)
    alice.refresh_from_db()
    assert user_role(alice) == "user" and not alice.is_staff


def test_the_last_admin_rule_holds_in_the_service(admin):
    with pytest.raises(LastAdmin):
        services.user_admin_update(actor=admin, user=admin, is_active=False)


def test_deactivating_a_user_ends_their_sessions(client_for, login, api, admin, alice):
    session = login("alice@example.com")
    response = client_for(admin).patch(f"/users/{alice.pk}", {"is_active": False})
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert api.get("/users/me", **bearer(session["access"])).status_code == 401
    assert api.post("/auth/refresh", {"refresh": session["refresh"]}).status_code == 401
    assert AuditEvent.objects.filter(action="user.deactivated", actor=admin).exists()


def test_an_unknown_role_is_400_and_an_unknown_user_404(client_for, admin, alice):
    client = client_for(admin)
    assert client.patch(f"/users/{alice.pk}", {"role": "owner"}).status_code == 400
    assert client.get("/users/999999").status_code == 404
    assert client.patch("/users/999999", {"role": "user"}).status_code == 404


def test_the_api_checks_the_permissions_of_the_group(client_for, admin, make_user):
    other = make_user("other-admin@example.com", role=Role.ADMIN)
    Group.objects.get(name="admin").permissions.remove(Permission.objects.get(codename="view_user"))
    assert client_for(other).get("/users").status_code == 403


def test_a_deleted_admin_group_comes_back_with_every_permission(make_user):
    Group.objects.filter(name="admin").delete()  # as `manage.py flush` does
    boss = make_user("boss@example.com", role=Role.ADMIN)
    assert boss.has_perm("accounts.administer")
    assert Group.objects.get(name="admin").permissions.count() == Permission.objects.count()
