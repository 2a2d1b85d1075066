"""20 AI calls per user per minute, counted in Redis, exactly, however many arrive at once."""

from __future__ import annotations

import pytest

from billing import ratelimits, services
from billing.errors import RateLimited
from billing.models import ApiKeyQuota, UserQuota
from billing.tests.conftest import run_at_once
from nexus.lib.errors import exception_handler


def admit(user, target, api_key=None):
    return services.admission_reserve(
        user=user, api_key=api_key, target=target, input_tokens=10, max_output_tokens=10
    )


def test_the_21st_call_in_a_minute_is_rate_limited_with_retry_after(user, target, ratelimit_clock):
    for _ in range(20):
        admit(user, target)

    with pytest.raises(RateLimited) as refused:
        admit(user, target)

    assert refused.value.status_code == 429
    assert refused.value.code == "rate_limited"
    assert refused.value.retry_after is not None
    assert 1 <= refused.value.retry_after <= 60


def test_the_next_minute_lets_calls_through_again(user, target, ratelimit_clock):
    for _ in range(20):
        admit(user, target)
    with pytest.raises(RateLimited) as refused:
        admit(user, target)

    ratelimit_clock.now += refused.value.retry_after or 0

    admit(user, target)


def test_each_user_has_a_count_of_their_own(user, target, ratelimit_clock, django_user_model):
    other = django_user_model.objects.create_user("bob@example.com", "correct horse battery")
    for _ in range(20):
        admit(user, target)

    admit(other, target)


def test_the_limit_comes_from_the_setting(user, target, ratelimit_clock, settings):
    settings.AI_CALLS_PER_MINUTE = 3
    for _ in range(3):
        admit(user, target)

    with pytest.raises(RateLimited):
        admit(user, target)


def test_an_admin_can_give_a_user_a_limit_of_their_own(user, target, ratelimit_clock):
    UserQuota.objects.create(user=user, calls_per_minute=2)
    admit(user, target)
    admit(user, target)

    with pytest.raises(RateLimited):
        admit(user, target)


def test_zero_means_no_limit(user, target, ratelimit_clock):
    UserQuota.objects.create(user=user, calls_per_minute=0)

    for _ in range(25):
        admit(user, target)


def test_an_api_key_with_its_own_limit_is_held_to_it(user, api_key, target, ratelimit_clock):
    ApiKeyQuota.objects.create(api_key=api_key, calls_per_minute=2)
    admit(user, target, api_key)
    admit(user, target, api_key)

    with pytest.raises(RateLimited):
        admit(user, target, api_key)
    # The user's other calls still have their own minute.
    admit(user, target)


def test_calls_with_a_key_count_toward_the_users_limit(user, api_key, target, ratelimit_clock):
    for _ in range(20):
        admit(user, target, api_key)

    with pytest.raises(RateLimited):
        admit(user, target)


@pytest.mark.django_db(transaction=True)
def test_100_simultaneous_calls_let_exactly_20_through(user, target, ratelimit_clock):
    results = run_at_once(lambda: admit(user, target), times=100)

    admitted = [result for result in results if isinstance(result, services.Admission)]
    refused = [result for result in results if isinstance(result, RateLimited)]
    assert (len(admitted), len(refused)) == (20, 80)


def test_the_refusal_reaches_the_client_as_429_with_retry_after(user, target, ratelimit_clock):
    UserQuota.objects.create(user=user, calls_per_minute=1)
    admit(user, target)
    with pytest.raises(RateLimited) as refused:
        admit(user, target)

    response = exception_handler(refused.value, {})

    assert response is not None
    assert response.status_code == 429
    assert response["Retry-After"] == str(refused.value.retry_after)
    assert response.data["error"]["code"] == "rate_limited"


def test_the_limit_counts_any_60_seconds_not_a_clock_minute(user, target, ratelimit_clock):
    ratelimit_clock.now = 1_900_000_059.5  # half a second before a clock minute ends
    for _ in range(20):
        admit(user, target)
    ratelimit_clock.now += 1.0  # the next clock minute: a fixed window let 20 more through
    with pytest.raises(RateLimited) as refused:
        admit(user, target)
    assert refused.value.retry_after == 59


def test_calls_leave_the_count_one_minute_after_they_were_made(user, target, ratelimit_clock):
    start = ratelimit_clock.now
    for _ in range(10):
        admit(user, target)
    ratelimit_clock.now = start + 30
    for _ in range(10):
        admit(user, target)
    ratelimit_clock.now = start + 59
    with pytest.raises(RateLimited) as refused:
        admit(user, target)
    assert refused.value.retry_after == 1

    ratelimit_clock.now = start + 60  # the first ten have left the window, the last ten not
    for _ in range(10):
        admit(user, target)
    with pytest.raises(RateLimited) as refused:
        admit(user, target)
    assert refused.value.retry_after == 30


def test_without_redis_one_process_counts_the_same_way(user, target, ratelimit_clock, settings):
    settings.REDIS_URL = ""
    ratelimits._memory.clear()
    for _ in range(20):
        admit(user, target)
    with pytest.raises(RateLimited) as refused:
        admit(user, target)
    assert refused.value.retry_after == 60
    ratelimit_clock.now += 60
    admit(user, target)
