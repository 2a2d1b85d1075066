"""WebSocket routes of the chats app."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from chats.consumers import ChatConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/chat", ChatConsumer.as_asgi()),
]
