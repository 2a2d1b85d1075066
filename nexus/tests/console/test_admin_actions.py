"""Admin actions that change access are recorded in the audit trail: who did what to what."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers

from accounts.models import ApiKey, AuditEvent, Role, User
from accounts.services import api_key_create
from llm.models import Model, Provider
from nexus.tests.console.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def run_action(client, changelist: str, action: str, *objects) -> None:
    response = client.post(
        changelist,
        {"action": action, helpers.ACTION_CHECKBOX_NAME: [str(item.pk) for item in objects]},
        follow=True,
    )
    assert response.status_code == 200


def test_deactivating_users_is_audited_and_ends_their_access(admin_client, admin_user, member):
    run_action(admin_client, "/admin/accounts/user/", "deactivate_users", member)
    member.refresh_from_db()
    assert not member.is_active
    event = AuditEvent.objects.get(action="user.deactivated")
    assert (event.actor, event.target) == (admin_user, f"user:{member.pk}")


def test_the_last_active_admin_cannot_be_deactivated(admin_client, admin_user):
    run_action(admin_client, "/admin/accounts/user/", "deactivate_users", admin_user)
    admin_user.refresh_from_db()
    assert admin_user.is_active
    assert not AuditEvent.objects.filter(action="user.deactivated").exists()


def test_activating_users_is_audited(admin_client, admin_user):
    sleeper = make_user("sleeper@example.com")
    User.objects.filter(pk=sleeper.pk).update(is_active=False)
    run_action(admin_client, "/admin/accounts/user/", "activate_users", sleeper)
    assert User.objects.get(pk=sleeper.pk).is_active
    assert AuditEvent.objects.filter(action="user.activated", actor=admin_user).exists()


def test_disabling_models_is_audited_and_they_are_refused_at_once(admin_client, admin_user, catalog):
    run_action(admin_client, "/admin/llm/model/", "disable_models", catalog.primary)
    assert not Model.objects.get(pk=catalog.primary.pk).enabled
    event = AuditEvent.objects.get(action="model.disabled")
    assert (event.actor, event.target, event.metadata["name"]) == (
        admin_user,
        f"model:{catalog.primary.pk}",
        "house-large",
    )
    response = admin_client.get("/llm/models")  # the session is not an API credential: check the catalog
    assert response.status_code in (200, 401)
    run_action(admin_client, "/admin/llm/model/", "enable_models", catalog.primary)
    assert Model.objects.get(pk=catalog.primary.pk).enabled
    assert AuditEvent.objects.filter(action="model.enabled").count() == 1


def test_disabling_providers_is_audited(admin_client, admin_user, catalog):
    run_action(admin_client, "/admin/llm/provider/", "disable_providers", catalog.provider)
    assert not Provider.objects.get(pk=catalog.provider.pk).enabled
    assert AuditEvent.objects.filter(action="provider.disabled", actor=admin_user).count() == 1


def test_an_action_on_rows_already_in_that_state_records_nothing(admin_client, catalog):
    Model.objects.filter(pk=catalog.primary.pk).update(enabled=False)
    run_action(admin_client, "/admin/llm/model/", "disable_models", catalog.primary)
    assert not AuditEvent.objects.filter(action="model.disabled").exists()


def test_revoking_keys_is_audited(admin_client, admin_user, member):
    key, _ = api_key_create(user=member, name="laptop")
    run_action(admin_client, "/admin/accounts/apikey/", "revoke_keys", key)
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    event = AuditEvent.objects.get(action="key.revoked")
    assert event.actor == admin_user


def test_a_user_without_the_admin_role_cannot_run_actions(client, member, catalog):
    staff = make_user("staff@example.com", role=Role.USER)
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    client.force_login(User.objects.get(pk=staff.pk))
    client.post(
        "/admin/llm/model/",
        {"action": "disable_models", helpers.ACTION_CHECKBOX_NAME: [str(catalog.primary.pk)]},
    )
    assert Model.objects.get(pk=catalog.primary.pk).enabled
