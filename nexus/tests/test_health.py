"""GET /health reports the database and the cache, and answers 503 when either is down."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_healthy_with_both_services_up(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


def test_needs_no_login_and_costs_few_queries(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        assert client.get("/health").status_code == 200


@pytest.mark.live
def test_503_naming_the_database_when_it_is_unreachable(start_server):
    server = start_server(
        DATABASE_URL="postgres://postgres@127.0.0.1:1/nexus",
        DATABASE_POOL_TIMEOUT="1",
        DATABASE_POOL_MIN_SIZE="0",
    )
    with server.client() as http:
        response = http.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "checks": {"database": "error", "cache": "ok"}}


@pytest.mark.live
def test_503_naming_the_cache_when_redis_is_unreachable(start_server):
    server = start_server(REDIS_URL="redis://127.0.0.1:1/0")
    with server.client() as http:
        response = http.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "checks": {"database": "ok", "cache": "error"}}
