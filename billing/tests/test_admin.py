"""The console: the usage dashboard with its charts, the read-only ledger, quotas on users."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from billing.models import UsageRecord, UserQuota

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/billing/usagedashboard/"
RECORDS = "/admin/billing/usagerecord/"


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root@example.com", "correct horse battery")


@pytest.fixture
def traffic(user, call, make_target):
    cheap = make_target("cheap", input_price="0.10", output_price="0.40")
    call(user, input_tokens=1200, output_tokens=345)
    call(user, served=cheap, input_tokens=77, output_tokens=12, outcome="failed")


def test_the_dashboard_draws_its_charts_for_an_admin(client, admin_user, traffic):
    client.force_login(admin_user)

    response = client.get(DASHBOARD)

    assert response.status_code == 200
    page = response.content.decode()
    charts = page.split('id="content-main"')[1].split('id="footer"')[0]
    assert charts.count("<svg") == 4
    for title in ("Tokens per day", "Cost per day", "Cost by model", "Top users by cost"):
        assert title in page
    assert "ada@example.com" in page
    assert "cheap" in page
    assert "<rect" in charts and "<polyline" in charts
    assert "<script" not in charts
    assert "http" not in charts.replace("http://www.w3.org/2000/svg", "")


def test_the_dashboard_draws_an_empty_range_without_failing(client, admin_user):
    client.force_login(admin_user)

    response = client.get(DASHBOARD, {"days": "7"})

    assert response.status_code == 200
    assert "No AI calls in this range" in response.content.decode()


def test_the_admin_index_links_to_the_dashboard(client, admin_user):
    client.force_login(admin_user)

    assert DASHBOARD in client.get("/admin/").content.decode()


def test_the_dashboard_is_refused_to_a_user_who_is_not_staff(client, user):
    client.force_login(user)

    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_dashboard_is_refused_to_staff_without_the_permission(client, django_user_model):
    staff = django_user_model.objects.create_user("staff@example.com", "correct horse battery", is_staff=True)
    client.force_login(staff)

    assert client.get(DASHBOARD).status_code == 403


def test_staff_with_the_permission_see_the_dashboard(client, django_user_model):
    staff = django_user_model.objects.create_user("staff@example.com", "correct horse battery", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    client.force_login(staff)

    assert client.get(DASHBOARD).status_code == 200


def test_usage_records_are_listed_read_only_with_totals(client, admin_user, traffic):
    client.force_login(admin_user)

    response = client.get(RECORDS)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Totals of the 2 selected records" in page
    assert "/admin/billing/usagerecord/add/" not in page
    record = UsageRecord.objects.earliest("created_at")
    assert client.post(f"{RECORDS}{record.pk}/change/", {"cost": "0"}).status_code == 403


def test_usage_records_export_as_csv(client, admin_user, traffic):
    client.force_login(admin_user)
    ids = [str(pk) for pk in UsageRecord.objects.values_list("pk", flat=True)]

    response = client.post(RECORDS, {"action": "export_csv", "_selected_action": ids})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert lines[0].startswith("created_at,user,api_key,model_name")
    assert len(lines) == 3
    assert any("ada@example.com" in line and ",failed," in line for line in lines)


def test_a_users_quota_is_edited_on_the_users_page(client, admin_user, user):
    client.force_login(admin_user)
    page = client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()

    assert 'name="quota-0-monthly_budget"' in page
    UserQuota.objects.create(user=user, monthly_budget="3.5")
    assert "resets" in client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()


def test_usage_records_filter_by_model(client, admin_user, traffic):
    client.force_login(admin_user)

    response = client.get(RECORDS, {"model_name": "cheap"})

    assert response.status_code == 200
    assert "Totals of the 1 selected records" in response.content.decode()
