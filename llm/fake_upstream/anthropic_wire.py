"""The fake upstream's Anthropic Messages wire format."""

from __future__ import annotations

from typing import Any

from llm.fake_upstream.protocols import Protocol, sse


class AnthropicProtocol(Protocol):
    name = "anthropic"
    _TYPES = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
    }

    def api_key(self) -> str:
        # The SDK sends `x-api-key`, or, since its 2026 versions, a Bearer token.
        headers = self.exchange.headers
        return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")

    def context_length_message(self) -> str:
        return "prompt is too long: 210000 tokens > 200000 maximum"

    async def send_error(self, status: int, message: str, headers: dict[str, str]) -> None:
        kind = self._TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": f"req_{self.id}"}
        await self.exchange.send(status, body, {"request-id": f"req_{self.id}", **headers})

    @staticmethod
    def _stop_reason(finish: str) -> str:
        return {"stop": "end_turn", "length": "max_tokens"}.get(finish, finish)

    def _message(
        self, body: dict[str, Any], content: list[Any], usage: tuple[int, int] | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": f"msg_{self.id}",
            "type": "message",
            "role": "assistant",
            "model": self.model(body),
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
        }
        if usage is not None:
            message["usage"] = {"input_tokens": usage[0], "output_tokens": 1}
        return message

    def complete(
        self, body: dict[str, Any], text: str, usage: tuple[int, int] | None, finish: str
    ) -> dict[str, Any]:
        message = self._message(body, [{"type": "text", "text": text}], usage)
        message["stop_reason"] = self._stop_reason(finish)
        if usage is not None:
            message["usage"] = {"input_tokens": usage[0], "output_tokens": usage[1]}
        return message

    def opening(self, body: dict[str, Any], usage: tuple[int, int] | None) -> list[str]:
        start = {"type": "message_start", "message": self._message(body, [], usage)}
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        return [
            sse(start, "message_start"),
            sse(block, "content_block_start"),
            sse({"type": "ping"}, "ping"),
        ]

    def error_event(self) -> str:
        return sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")

    def delta(self, body: dict[str, Any], token: str, index: int, usage: tuple[int, int] | None) -> str:
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}}
        return sse(delta, "content_block_delta")

    def closing(self, body: dict[str, Any], usage: tuple[int, int] | None, finish: str) -> list[str]:
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop_reason(finish), "stop_sequence": None},
        }
        if usage is not None:
            delta["usage"] = {"output_tokens": usage[1]}
        return [
            sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            sse(delta, "message_delta"),
            sse({"type": "message_stop"}, "message_stop"),
        ]
