"""ASGI entry point: HTTP goes to Django, WebSocket to the Channels routes."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus.settings")
django_asgi_app = get_asgi_application()  # sets Django up before the consumers are imported

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from nexus.lib.database_health import install_database_breaker  # noqa: E402
from nexus.lib.database_pool import pool_fit  # noqa: E402
from nexus.lib.http_limits import install_http_limits  # noqa: E402
from nexus.lib.reason_phrases import install_reason_phrases  # noqa: E402
from nexus.routing import websocket_urlpatterns  # noqa: E402

# daphne writes Twisted's phrase for each status, and Twisted's table lacks some: "429 Unknown Status".
install_reason_phrases()
# Twisted drops a connection whose header line passes 16 KiB; answer 431 instead.
install_http_limits()
# While PostgreSQL is known down, requests get their 503 at once, not after the pool's timeout.
install_database_breaker()
# The pool (and the database threads) at this process's share of PostgreSQL's connections.
pool_fit()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
