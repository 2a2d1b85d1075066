"""What the fake upstream's wire formats share; each format is a module of its own:
openai_wire (OpenAI and Azure), anthropic_wire and gemini_wire."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fake_upstream.server import Exchange, Knobs


def sse(data: Any, event: str | None = None) -> str:
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {json.dumps(data)}\n\n"


class Protocol:
    """One provider's wire format: errors, a complete reply, and a stream's events."""

    name = ""
    knobs: Knobs  # set by the server before it answers

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.id = uuid.uuid4().hex[:24]
        self.created = int(time.time())

    def max_tokens(self, body: dict[str, Any]) -> int | None:
        """The request's limit on output tokens, under this wire format's name for it."""
        return None

    def choices(self, body: dict[str, Any]) -> int:
        """How many alternative replies the request asks for."""
        return 1

    def reasoning_delta(self, body: dict[str, Any], token: str, index: int) -> list[str]:
        """The events of one word of the reply's reasoning (knobs.reasoning)."""
        return []

    def tool_call_events(self, body: dict[str, Any], index: int, name: str, arguments: str) -> list[str]:
        """The events of the reply's tool call number `index` (knobs.tool_calls), after its text."""
        return []

    def model(self, body: dict[str, Any]) -> str:
        return str(body.get("model", ""))

    def streaming(self, body: dict[str, Any]) -> bool:
        return bool(body.get("stream"))

    def api_key(self) -> str:
        raise NotImplementedError

    def bad_key(self, key: str) -> tuple[int, str, dict[str, str]]:
        # Real providers echo (part of) a wrong key; the fake echoes all of it, to prove that
        # Nexus never passes it on.
        return 401, f"Incorrect API key provided: {key}.", {}

    def context_length_message(self) -> str:
        raise NotImplementedError

    async def send_error(self, status: int, message: str, headers: dict[str, str]) -> None:
        raise NotImplementedError

    def complete(
        self, body: dict[str, Any], text: str, usage: tuple[int, int] | None, finish: str
    ) -> dict[str, Any]:
        raise NotImplementedError

    def opening(self, body: dict[str, Any], usage: tuple[int, int] | None) -> list[str]:
        return []

    def error_event(self) -> str:
        """An error reported inside a stream that began well: the provider is overloaded."""
        raise NotImplementedError

    def delta(self, body: dict[str, Any], token: str, index: int, usage: tuple[int, int] | None) -> str:
        raise NotImplementedError

    def closing(self, body: dict[str, Any], usage: tuple[int, int] | None, finish: str) -> list[str]:
        raise NotImplementedError
