"""The fake upstream's Gemini generateContent wire format."""

from __future__ import annotations

import json
import re
from typing import Any

from llm.fake_upstream.protocols import Protocol


class GeminiProtocol(Protocol):
    name = "gemini"
    _STATUSES = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }

    def model(self, body: dict[str, Any]) -> str:
        match = re.search(r"/models/([^/:]+):", self.exchange.path)
        return match.group(1) if match else ""

    def streaming(self, body: dict[str, Any]) -> bool:
        return ":streamGenerateContent" in self.exchange.path

    def api_key(self) -> str:
        return self.exchange.headers.get("x-goog-api-key") or self.exchange.query.get("key", "")

    def bad_key(self, key: str) -> tuple[int, str, dict[str, str]]:
        # Gemini answers a wrong key with 400 INVALID_ARGUMENT and the reason API_KEY_INVALID.
        return 400, "API key not valid. Please pass a valid API key.", {}

    def context_length_message(self) -> str:
        return "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."

    async def send_error(self, status: int, message: str, headers: dict[str, str]) -> None:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": self._STATUSES.get(status, "UNKNOWN"),
        }
        if message.startswith("API key not valid"):
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                }
            ]
        await self.exchange.send(status, {"error": error}, headers)

    @staticmethod
    def _finish(finish: str) -> str:
        return {"stop": "STOP", "length": "MAX_TOKENS"}.get(finish, finish.upper())

    def _response(
        self,
        body: dict[str, Any],
        text: str | None,
        usage: dict[str, int] | None,
        finish: str | None = None,
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}] if text is not None else [], "role": "model"}
        }
        candidate["index"] = 0
        if finish:
            candidate["finishReason"] = finish
        response: dict[str, Any] = {"candidates": [candidate], "modelVersion": self.model(body)}
        if usage is not None:
            response["usageMetadata"] = usage
        response["responseId"] = self.id
        return response

    @staticmethod
    def _usage(usage: tuple[int, int] | None, *, final: bool) -> dict[str, int] | None:
        if usage is None:
            return None
        if not final:
            return {"promptTokenCount": usage[0], "totalTokenCount": usage[0]}
        return {"promptTokenCount": usage[0], "candidatesTokenCount": usage[1], "totalTokenCount": sum(usage)}

    def complete(
        self, body: dict[str, Any], text: str, usage: tuple[int, int] | None, finish: str
    ) -> dict[str, Any]:
        return self._response(body, text, self._usage(usage, final=True), self._finish(finish))

    def delta(self, body: dict[str, Any], token: str, index: int, usage: tuple[int, int] | None) -> str:
        return (
            "data: " + json.dumps(self._response(body, token, self._usage(usage, final=False))) + "\r\n\r\n"
        )

    def error_event(self) -> str:
        error = {
            "code": 503,
            "message": "The model is overloaded. Please try again later.",
            "status": "UNAVAILABLE",
        }
        return "data: " + json.dumps({"error": error}) + "\r\n\r\n"

    def closing(self, body: dict[str, Any], usage: tuple[int, int] | None, finish: str) -> list[str]:
        final = self._response(body, "", self._usage(usage, final=True), self._finish(finish))
        return ["data: " + json.dumps(final) + "\r\n\r\n"]
