"""The admin home: users, AI calls, tokens, cost, error rate and the busiest models, with links."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from billing.models import UsageRecord
from nexus.services import runtime_settings_update
from nexus.tests.console.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</table>", start)]


def test_the_home_shows_todays_and_this_months_usage(admin_client, catalog, record_call):
    alice, bob = make_user("alice@example.com"), make_user("bob@example.com")
    make_user("idle@example.com")
    record_call(alice, catalog.primary, input_tokens=1000, output_tokens=500)
    record_call(alice, catalog.primary, outcome="failed", input_tokens=100, output_tokens=0)
    record_call(bob, catalog.backup, input_tokens=10, output_tokens=10)
    html = admin_client.get("/admin/").content.decode()

    assert 'id="nexus-users-total">4<' in html
    assert 'id="nexus-users-active">3<' in html  # the admin signed in, alice and bob called a model
    usage = section(html, "nexus-usage")
    today = re.search(r"Today</th>(.*?)</tr>", usage, re.S)
    assert today is not None
    cells = re.findall(r'<td class="num">(?:<a href="[^"]*">)?([^<]*)', today.group(1))
    assert cells[0] == "3"  # calls
    assert cells[1] == "1.62k"  # tokens
    assert cells[3] == "33.3%"  # error rate


def test_the_busiest_models_come_first_and_link_to_their_records(admin_client, catalog, record_call):
    user = make_user("alice@example.com")
    for _ in range(3):
        record_call(user, catalog.backup)
    record_call(user, catalog.primary)
    models = section(admin_client.get("/admin/").content.decode(), "nexus-busiest-models")
    assert models.index("house-small") < models.index("house-large")
    link = re.search(r'href="([^"]*)">house-small<', models)
    assert link is not None
    target = link.group(1).replace("&amp;", "&")
    assert parse_qs(urlparse(target).query)["model_name"] == ["house-small"]
    listing = admin_client.get(target)
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == UsageRecord.objects.filter(model_name="house-small").count()


def test_maintenance_mode_is_announced_on_the_home(admin_client, admin_user):
    runtime_settings_update(
        actor=admin_user, changes={"maintenance_mode": True, "maintenance_message": "Moving racks."}
    )
    html = admin_client.get("/admin/").content.decode()
    assert 'id="nexus-maintenance"' in html and "Moving racks." in html


def test_an_empty_month_says_so(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert "No AI calls this month yet." in html


def test_the_dashboard_costs_a_bounded_number_of_queries(
    admin_client, catalog, record_call, django_assert_max_num_queries
):
    for number in range(20):
        record_call(make_user(f"user{number}@example.com"), catalog.primary)
    with django_assert_max_num_queries(20):
        assert admin_client.get("/admin/").status_code == 200
