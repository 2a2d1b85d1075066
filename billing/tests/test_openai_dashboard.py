"""GET /dashboard/billing/subscription and /usage: OpenAI's legacy balance (NextChat's, replayed
in chats/tests/test_nextchat.py).

Both at the root and under /v1, with a real API key or a JWT on the wire; usage rows come from
billing's own services, on days set by billing's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.services import api_key_create, api_key_revoke
from billing import periods
from billing.models import UsageRecord
from billing.services import api_key_quota_set, user_quota_set

pytestmark = pytest.mark.django_db

PREFIXES = ("", "/v1")
SUBSCRIPTION = "/dashboard/billing/subscription"
USAGE = "/dashboard/billing/usage"


def key_headers(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def jwt_headers(user) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(user).access_token}"}


@pytest.fixture
def key(user):
    """A key as a user makes it (POST /keys), and its secret, as NextChat sends it."""
    return api_key_create(user=user, name="NextChat")


def on_day(monkeypatch, moment: datetime) -> None:
    monkeypatch.setattr(periods, "now", lambda: moment)


def cents(records) -> Decimal:
    return records.aggregate(cost=Sum("cost"))["cost"] * 100


def as_decimal(number: float) -> Decimal:
    # JSON numbers are written by repr(), the shortest text that reads back the same.
    return Decimal(repr(number))


# --- subscription --------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_subscription_is_the_users_monthly_budget(api_client, user, key, settings, prefix):
    settings.DEFAULT_MONTHLY_BUDGET = "12.50"
    _, secret = key

    response = api_client.get(prefix + SUBSCRIPTION, **key_headers(secret))

    assert response.status_code == 200
    assert response.json() == {
        "object": "billing_subscription",
        "has_payment_method": True,
        "soft_limit_usd": 12.5,
        "hard_limit_usd": 12.5,
        "system_hard_limit_usd": 12.5,
        "access_until": 0,
        "plan": {"title": "Monthly budget", "id": "user"},
    }


def test_an_admins_override_of_the_users_budget_is_the_hard_limit(api_client, user):
    user_quota_set(user=user, monthly_budget=Decimal("3.7500"))

    body = api_client.get(SUBSCRIPTION, **jwt_headers(user)).json()

    assert (body["hard_limit_usd"], body["system_hard_limit_usd"]) == (3.75, 3.75)


def test_a_key_with_a_tighter_budget_shows_its_own(api_client, user, key):
    api_key, secret = key
    user_quota_set(user=user, monthly_budget=Decimal("20"))
    api_key_quota_set(api_key=api_key, monthly_budget=Decimal("1.25"))

    body = api_client.get(SUBSCRIPTION, **key_headers(secret)).json()

    assert body["hard_limit_usd"] == 1.25
    assert body["system_hard_limit_usd"] == 20.0  # what no key of the user can go past
    assert body["plan"]["id"] == "key"
    # The same user with a JWT is not limited by the key.
    assert api_client.get(SUBSCRIPTION, **jwt_headers(user)).json()["hard_limit_usd"] == 20.0


def test_a_key_with_a_looser_budget_shows_its_users(api_client, user, key):
    api_key, secret = key
    user_quota_set(user=user, monthly_budget=Decimal("2"))
    api_key_quota_set(api_key=api_key, monthly_budget=Decimal("50"))

    body = api_client.get(SUBSCRIPTION, **key_headers(secret)).json()

    assert (body["hard_limit_usd"], body["plan"]["id"]) == (2.0, "user")


def test_a_key_that_expires_says_when(api_client, user):
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    _, secret = api_key_create(user=user, name="month", expires_at=expires)

    body = api_client.get(SUBSCRIPTION, **key_headers(secret)).json()

    assert body["access_until"] == int(expires.timestamp())


# --- usage ---------------------------------------------------------------------------------


@pytest.fixture
def march(monkeypatch, user, key, call, make_target, django_user_model):
    """Calls in March 2031 (UTC) with the key and without it, of two models, and a stranger's."""
    api_key, _ = key
    odd = make_target("odd-priced", input_price="0.123457", output_price="3.333333")
    stranger = django_user_model.objects.create_user("eve@example.com", "correct horse battery")
    for moment, caller, kwargs in [
        (datetime(2031, 2, 28, 23, 59, tzinfo=UTC), user, {"api_key": api_key}),  # before the range
        (datetime(2031, 3, 1, 0, 0, tzinfo=UTC), user, {"api_key": api_key}),
        (datetime(2031, 3, 1, 9, 30, tzinfo=UTC), user, {"api_key": api_key, "served": odd}),
        (datetime(2031, 3, 1, 10, 0, tzinfo=UTC), user, {"served": odd, "input_tokens": 777}),  # no key
        (datetime(2031, 3, 3, 23, 59, tzinfo=UTC), user, {"api_key": api_key, "output_tokens": 1234}),
        (datetime(2031, 3, 4, 0, 0, tzinfo=UTC), user, {"api_key": api_key}),  # the end day: not included
        (datetime(2031, 3, 2, 12, 0, tzinfo=UTC), stranger, {}),
    ]:
        on_day(monkeypatch, moment)
        call(caller, **kwargs)
    return {"start_date": "2031-03-01", "end_date": "2031-03-04"}


def in_range(**filters):
    return UsageRecord.objects.filter(
        created_at__gte=datetime(2031, 3, 1, tzinfo=UTC),
        created_at__lt=datetime(2031, 3, 4, tzinfo=UTC),
        **filters,
    )


@pytest.mark.parametrize("prefix", PREFIXES)
def test_usage_with_a_key_is_the_keys_cost_in_exact_cents(api_client, user, key, march, prefix):
    api_key, secret = key

    response = api_client.get(prefix + USAGE, march, **key_headers(secret))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"object", "daily_costs", "total_usage"}
    assert body["object"] == "list"
    assert as_decimal(body["total_usage"]) == cents(in_range(user=user, api_key=api_key))


def test_usage_with_a_jwt_is_every_call_of_the_user(api_client, user, march):
    body = api_client.get(USAGE, march, **jwt_headers(user)).json()

    assert as_decimal(body["total_usage"]) == cents(in_range(user=user))


def test_each_day_lists_its_cost_per_model_and_the_end_date_is_not_included(api_client, user, march):
    body = api_client.get(USAGE, march, **jwt_headers(user)).json()

    days = [datetime.fromtimestamp(day["timestamp"], UTC) for day in body["daily_costs"]]
    assert days == [datetime(2031, 3, day, tzinfo=UTC) for day in (1, 2, 3)]
    first, second, third = (day["line_items"] for day in body["daily_costs"])
    assert [item["name"] for item in first] == ["gpt-test", "odd-priced"]
    for item in first:
        expected = cents(in_range(user=user, model_name=item["name"], created_at__day=1))
        assert as_decimal(item["cost"]) == expected
    assert second == []  # only the stranger called that day
    assert [item["name"] for item in third] == ["gpt-test"]
    line_items = sum(
        (as_decimal(item["cost"]) for day in body["daily_costs"] for item in day["line_items"]), Decimal(0)
    )
    assert line_items == as_decimal(body["total_usage"])


def test_a_range_without_calls_is_zero(api_client, user, key):
    body = api_client.get(
        USAGE, {"start_date": "2031-05-01", "end_date": "2031-05-03"}, **key_headers(key[1])
    ).json()

    assert body["total_usage"] == 0
    assert [day["line_items"] for day in body["daily_costs"]] == [[], []]


def test_usage_costs_a_single_query(api_client, user, march, django_assert_num_queries):
    api_client.force_authenticate(user)

    with django_assert_num_queries(1):
        response = api_client.get(USAGE, march)

    assert response.status_code == 200


def test_a_dollar_is_a_hundred_cents(api_client, user, key, call):
    api_key, secret = key
    for _ in range(3):
        call(user, api_key=api_key, input_tokens=400_000, output_tokens=0)  # 1.00 each
    today = periods.utc_day(periods.now())
    query = {"start_date": f"{today:%Y-%m-01}", "end_date": f"{today + timedelta(days=1):%Y-%m-%d}"}

    body = api_client.get(USAGE, query, **key_headers(secret)).json()

    assert body["total_usage"] == 300.0
    assert body["daily_costs"][-1]["line_items"] == [{"name": "gpt-test", "cost": 300.0}]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start_date": "2031-03-01"}, "end_date"),
        ({"end_date": "2031-03-04"}, "start_date"),
        ({"start_date": "", "end_date": "2031-03-04"}, "start_date"),
        ({"start_date": "01/03/2031", "end_date": "2031-03-04"}, "start_date"),
        ({"start_date": "2031-03-01", "end_date": "2031-02-30"}, "end_date"),
        ({"start_date": "2031-03-01T00:00", "end_date": "2031-03-04"}, "start_date"),
        ({"start_date": "2031-03-04", "end_date": "2031-03-01"}, "end_date"),
        ({"start_date": "2031-03-01", "end_date": "2031-03-01"}, "end_date"),
        ({"start_date": "2031-01-01", "end_date": "2031-04-12"}, "end_date"),  # 101 days
    ],
)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_bad_dates_are_a_400_naming_the_field(api_client, user, key, query, field, prefix):
    response = api_client.get(prefix + USAGE, query, **key_headers(key[1]))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == field
    assert field in error["fields"]


def test_without_dates_it_is_this_month_as_nextchats_server_forwards_the_call(
    api_client, user, key, call, monkeypatch
):
    """NextChat's server (BASE_URL) drops the query string; NextChat asks for this month anyway."""
    api_key, secret = key
    on_day(monkeypatch, datetime(2031, 3, 31, 23, 0, tzinfo=UTC))
    call(user, api_key=api_key)
    on_day(monkeypatch, datetime(2031, 4, 2, 8, 0, tzinfo=UTC))
    today = call(user, api_key=api_key)

    body = api_client.get(USAGE, **key_headers(secret)).json()

    days = [datetime.fromtimestamp(day["timestamp"], UTC).date() for day in body["daily_costs"]]
    assert days == [datetime(2031, 4, day, tzinfo=UTC).date() for day in (1, 2)]
    assert as_decimal(body["total_usage"]) == today.cost * 100


def test_a_hundred_days_may_be_asked_at_once(api_client, user, key):
    response = api_client.get(
        USAGE, {"start_date": "2031-01-01", "end_date": "2031-04-11"}, **key_headers(key[1])
    )

    assert response.status_code == 200
    assert len(response.json()["daily_costs"]) == 100


# --- credentials ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [SUBSCRIPTION, USAGE, "/v1" + SUBSCRIPTION, "/v1" + USAGE])
def test_both_need_credentials(api_client, path):
    response = api_client.get(path, {"start_date": "2031-03-01", "end_date": "2031-03-04"})

    assert response.status_code == 401  # what NextChat shows as "Unauthorized"
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_revoked_key_is_refused(api_client, user, key):
    api_key, secret = key
    api_key_revoke(key=api_key)

    assert api_client.get(SUBSCRIPTION, **key_headers(secret)).status_code == 401
