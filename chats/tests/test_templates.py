"""Templates: own, public and global ones are visible; only the owner (or an admin) changes one."""

from __future__ import annotations

import pytest

from accounts.models import User
from chats.models import Template
from chats.tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(db) -> User:
    return User.objects.create_superuser("root@example.com", "correct horse battery staple")


def test_a_template_is_created_and_listed(alice_client):
    response = alice_client.post(
        "/chat/templates",
        {"name": "Translator", "system_prompt": "Translate to French.", "parameters": {"temperature": 0}},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["is_own"] is True
    assert [t["name"] for t in alice_client.get("/chat/templates").json()["results"]] == ["Translator"]


def test_visibility_is_own_public_and_global(alice, bob, bob_client):
    Template.objects.create(owner=alice, name="alice private")
    Template.objects.create(owner=alice, name="alice public", is_public=True)
    Template.objects.create(owner=None, name="global")
    Template.objects.create(owner=bob, name="bob own")
    names = sorted(t["name"] for t in bob_client.get("/chat/templates").json()["results"])
    assert names == ["alice public", "bob own", "global"]


def test_a_private_template_of_another_user_is_404(alice, bob_client):
    template = Template.objects.create(owner=alice, name="secret")
    assert bob_client.get(f"/chat/templates/{template.pk}").status_code == 404
    assert bob_client.delete(f"/chat/templates/{template.pk}").status_code == 404
    assert Template.objects.filter(pk=template.pk).exists()


def test_a_public_template_can_be_read_but_not_changed_by_others(alice, bob_client):
    template = Template.objects.create(owner=alice, name="shared", is_public=True)
    assert bob_client.get(f"/chat/templates/{template.pk}").status_code == 200
    assert (
        bob_client.patch(f"/chat/templates/{template.pk}", {"name": "mine"}, format="json").status_code == 403
    )
    template.refresh_from_db()
    assert template.name == "shared"


def test_only_admins_make_and_change_global_templates(alice_client, admin_user):
    assert (
        alice_client.post("/chat/templates", {"name": "g", "is_global": True}, format="json").status_code
        == 403
    )
    admin = client_for(admin_user)
    created = admin.post("/chat/templates", {"name": "g", "is_global": True}, format="json")
    assert created.status_code == 201 and created.json()["is_global"] is True
    template_id = created.json()["id"]
    assert (
        alice_client.patch(f"/chat/templates/{template_id}", {"name": "x"}, format="json").status_code == 403
    )
    assert (
        admin.patch(f"/chat/templates/{template_id}", {"name": "General"}, format="json").status_code == 200
    )


def test_a_template_without_a_name_is_refused(alice_client):
    response = alice_client.post("/chat/templates", {"system_prompt": "x"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]
