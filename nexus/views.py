"""Project-level endpoints: the health check, and the Prometheus metrics."""

from __future__ import annotations

import hmac
import logging
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from nexus.lib import metrics as process_metrics
from nexus.lib.errors import error_response

logger = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("the cache did not return what was written")
    cache.delete(key)


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """`{"status": "ok", "checks": {...}}`, or 503 naming each failing dependency."""
    checks: dict[str, str] = {}
    for name, check in (("database", _check_database), ("cache", _check_cache)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # any failure of a dependency is what this reports
            logger.warning("Health check %s failed: %s", name, exc)
            checks[name] = "error"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """This process's metrics (Prometheus text format) for `Authorization: Bearer METRICS_TOKEN`.

    404 while METRICS_TOKEN is unset, as if there were no such page; 401 for a wrong token.
    """
    token = str(settings.METRICS_TOKEN)
    if not token:
        return error_response(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        response = error_response(401, message="Send the metrics token as `Authorization: Bearer <token>`.")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = process_metrics.exposition(accept=request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
