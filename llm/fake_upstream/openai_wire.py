"""The fake upstream's OpenAI chat completions wire format, and Azure OpenAI's paths."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from llm.fake_upstream.protocols import Protocol, sse

if TYPE_CHECKING:
    from llm.fake_upstream.server import Exchange


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
        return sse(chunk)

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
                sse(
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
        return sse({"error": error})

    def closing(self, body: dict[str, Any], usage: tuple[int, int] | None, finish: str) -> list[str]:
        events = [self._chunk(body, [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}])]
        options = body.get("stream_options") or {}
        if usage is not None and options.get("include_usage"):
            events.append(self._chunk(body, [], usage=self._usage(usage)))
        events.append("data: [DONE]\n\n")
        return events
