"""WebSocket routes of the chats app, behind an origin check.

Browsers send an `Origin` and let any page open a socket to any host; the check lets
through pages of the hosts in ALLOWED_HOSTS (Channels' `AllowedHostsOriginValidator` rules)
and of the origins in CORS_ALLOWED_ORIGINS. Native clients send no `Origin` and pass. A
refused page is accepted and closed with 4403, a code it can read (a 403 at the handshake
reaches it as a bare 1006).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.urls import URLPattern, URLResolver, path

from chats.consumers import ChatConsumer, OriginRefused

Asgi = Any  # an ASGI application: async (scope, receive, send)

_refused = OriginRefused.as_asgi()


def allowed_origins() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:  # as Django serves a DEBUG project with no ALLOWED_HOSTS
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return [*hosts, *settings.CORS_ALLOWED_ORIGINS]


class OriginChecked:
    """`application` for a request without an Origin or from an allowed one, else OriginRefused."""

    def __init__(self, application: Asgi) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        origin = next((value for name, value in scope.get("headers", []) if name == b"origin"), None)
        if origin is None:
            return await self.application(scope, receive, send)
        # Read per connection, so a changed setting (or a test's) applies at once.
        validator = OriginValidator(self.application, allowed_origins())
        if validator.valid_origin(urlparse(origin.decode("latin1"))):
            return await self.application(scope, receive, send)
        return await _refused(scope, receive, send)


websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/chat", OriginChecked(ChatConsumer.as_asgi())),
]
