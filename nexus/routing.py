"""WebSocket routes: each app with a consumer contributes its patterns."""

from __future__ import annotations

from chats.routing import websocket_urlpatterns

__all__ = ["websocket_urlpatterns"]
