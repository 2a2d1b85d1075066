"""The wire formats the fake upstream speaks: OpenAI (and Azure), Anthropic and Gemini."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm.fake_upstream.server import Exchange, Knobs


def _sse(data: Any, event: str | None = None) -> str:
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


class OpenAIProtocol(Protocol):
    """OpenAI chat completions, and Azure OpenAI's deployment paths."""

    def __init__(self, exchange: Exchange) -> None:
        super().__init__(exchange)
        match = re.search(r"/openai/deployments/([^/]+)/chat/completions$", exchange.path)
        self.deployment = match.group(1) if match else None
        self.name = "azure_openai" if self.deployment else "openai"

    def model(self, body: dict[str, Any]) -> str:
        return self.deployment or str(body.get("model", ""))

    def api_key(self) -> str:
        if self.deployment:
            return self.exchange.headers.get("api-key", "")
        return self.exchange.headers.get("authorization", "").removeprefix("Bearer ")

    def context_length_message(self) -> str:
        return (
            "This model's maximum context length is 8192 tokens. However, your messages resulted "
            "in 9001 tokens. Please reduce the length of the messages."
        )

    async def send_error(self, status: int, message: str, headers: dict[str, str]) -> None:
        code = {401: "invalid_api_key", 429: "rate_limit_exceeded", 404: "model_not_found"}.get(status)
        if status == 400 and "context length" in message:
            code = "context_length_exceeded"
        kind = {
            400: "invalid_request_error",
            401: "invalid_request_error",
            403: "permission_error",
            404: "invalid_request_error",
            429: "requests",
        }.get(status, "server_error")
        await self.exchange.send(
            status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers
        )

    def _chunk(self, body: dict[str, Any], choices: list[dict[str, Any]], **extra: Any) -> str:
        chunk = {
            "id": f"chatcmpl-{self.id}",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model(body),
            "system_fingerprint": "fp_fake",
            "choices": choices,
            **extra,
        }
        return _sse(chunk)

    @staticmethod
    def _usage(usage: tuple[int, int]) -> dict[str, int]:
        return {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}

    def complete(
        self, body: dict[str, Any], text: str, usage: tuple[int, int] | None, finish: str
    ) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "id": f"chatcmpl-{self.id}",
            "object": "chat.completion",
            "created": self.created,
            "model": self.model(body),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
        }
        if usage is not None:
            reply["usage"] = self._usage(usage)
        return reply

    def opening(self, body: dict[str, Any], usage: tuple[int, int] | None) -> list[str]:
        events = []
        if self.deployment:
            # Azure opens with the content filter's verdict on the prompt, with no choices.
            events.append(
                _sse(
                    {
                        "id": "",
                        "object": "",
                        "created": 0,
                        "model": "",
                        "choices": [],
                        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
                    }
                )
            )
        delta = {"role": "assistant", "content": "", "refusal": None}
        events.append(
            self._chunk(body, [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])
        )
        return events

    def delta(self, body: dict[str, Any], token: str, index: int, usage: tuple[int, int] | None) -> str:
        return self._chunk(
            body, [{"index": 0, "delta": {"content": token}, "logprobs": None, "finish_reason": None}]
        )

    def error_event(self) -> str:
        error = {
            "message": "The server is overloaded. Please try again.",
            "type": "server_error",
            "code": None,
        }
        return _sse({"error": error})

    def closing(self, body: dict[str, Any], usage: tuple[int, int] | None, finish: str) -> list[str]:
        events = [self._chunk(body, [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}])]
        options = body.get("stream_options") or {}
        if usage is not None and options.get("include_usage"):
            events.append(self._chunk(body, [], usage=self._usage(usage)))
        events.append("data: [DONE]\n\n")
        return events


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
            _sse(start, "message_start"),
            _sse(block, "content_block_start"),
            _sse({"type": "ping"}, "ping"),
        ]

    def error_event(self) -> str:
        return _sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error"
        )

    def delta(self, body: dict[str, Any], token: str, index: int, usage: tuple[int, int] | None) -> str:
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}}
        return _sse(delta, "content_block_delta")

    def closing(self, body: dict[str, Any], usage: tuple[int, int] | None, finish: str) -> list[str]:
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop_reason(finish), "stop_sequence": None},
        }
        if usage is not None:
            delta["usage"] = {"output_tokens": usage[1]}
        return [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(delta, "message_delta"),
            _sse({"type": "message_stop"}, "message_stop"),
        ]


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
