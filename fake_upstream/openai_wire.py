"""The fake upstream's OpenAI chat completions wire format, and Azure OpenAI's paths.

Beside text it speaks what OpenAI-kind clients read: `reasoning_content` deltas (DeepSeek's
field, which NextChat and many clients show), tool calls streamed as OpenAI streams them
(the first fragment of a call with its id and name, then its arguments in pieces), `n`
alternative replies in every chunk, and made-up but deterministic logprobs when asked.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from fake_upstream.protocols import Protocol, sse

if TYPE_CHECKING:
    from fake_upstream.server import Exchange

# The words the server's loop streams (Knobs.reply_tokens), to split a whole reply the same way.
_WORDS = re.compile(r"\s*\S+|\s+$")
# A call's arguments stream in this many pieces at most, as OpenAI streams a few tokens each.
_ARGUMENT_PIECES = 3


class OpenAIProtocol(Protocol):
    """OpenAI chat completions, and Azure OpenAI's deployment paths."""

    def __init__(self, exchange: Exchange) -> None:
        super().__init__(exchange)
        match = re.search(r"/openai/deployments/([^/]+)/chat/completions$", exchange.path)
        self.deployment = match.group(1) if match else None
        self.name = "azure_openai" if self.deployment else "openai"
        self._call_ids: dict[tuple[int, int], str] = {}

    def model(self, body: dict[str, Any]) -> str:
        return self.deployment or str(body.get("model", ""))

    def max_tokens(self, body: dict[str, Any]) -> int | None:
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        return limit if isinstance(limit, int) and not isinstance(limit, bool) else None

    def choices(self, body: dict[str, Any]) -> int:
        n = body.get("n")
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1

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

    # --- pieces of replies ---

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

    def _each_choice(
        self, body: dict[str, Any], delta: dict[str, Any], logprobs: Any = None, finish: str | None = None
    ) -> str:
        """One chunk carrying the same delta for each of the request's `n` choices."""
        choices = [
            {"index": choice, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            for choice in range(self.choices(body))
        ]
        return self._chunk(body, choices)

    @staticmethod
    def _usage(usage: tuple[int, int]) -> dict[str, int]:
        return {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}

    @staticmethod
    def _logprob(body: dict[str, Any], token: str, index: int) -> dict[str, Any]:
        """A made-up entry for the reply's word number `index`: the same values on every run."""
        logprob = -round(0.05 * (index % 7 + 1), 4)
        top = int(body.get("top_logprobs") or 0)
        alternatives = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
        alternatives += [
            {"token": f"alt{rank}", "logprob": logprob - rank, "bytes": list(f"alt{rank}".encode())}
            for rank in range(1, top)
        ]
        return {
            "token": token,
            "logprob": logprob,
            "bytes": list(token.encode()),
            "top_logprobs": alternatives[:top],
        }

    def _call_id(self, choice: int, index: int) -> str:
        return self._call_ids.setdefault((choice, index), f"call_{uuid.uuid4().hex[:24]}")

    def _tool_calls(self, choice: int) -> list[dict[str, Any]]:
        return [
            {
                "id": self._call_id(choice, index),
                "type": "function",
                "function": {"name": str(call["name"]), "arguments": str(call["arguments"])},
            }
            for index, call in enumerate(self.knobs.tool_calls or ())
        ]

    # --- a whole reply ---

    def complete(
        self, body: dict[str, Any], text: str, usage: tuple[int, int] | None, finish: str
    ) -> dict[str, Any]:
        choices = []
        for choice in range(self.choices(body)):
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
            if self.knobs.reasoning:
                message["reasoning_content"] = self.knobs.reasoning
            if self.knobs.tool_calls:
                message["tool_calls"] = self._tool_calls(choice)
                message["content"] = text or None
            logprobs = None
            if body.get("logprobs"):
                words = _WORDS.findall(text)
                entries = [self._logprob(body, word, index) for index, word in enumerate(words)]
                logprobs = {"content": entries, "refusal": None}
            choices.append(
                {"index": choice, "message": message, "logprobs": logprobs, "finish_reason": finish}
            )
        reply: dict[str, Any] = {
            "id": f"chatcmpl-{self.id}",
            "object": "chat.completion",
            "created": self.created,
            "model": self.model(body),
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }
        if usage is not None:
            reply["usage"] = self._usage(usage)
        return reply

    # --- a stream ---

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
        events.append(self._each_choice(body, {"role": "assistant", "content": "", "refusal": None}))
        return events

    def reasoning_delta(self, body: dict[str, Any], token: str, index: int) -> list[str]:
        # DeepSeek's shape: no content yet, the thinking in `reasoning_content`.
        return [self._each_choice(body, {"content": None, "reasoning_content": token})]

    def delta(self, body: dict[str, Any], token: str, index: int, usage: tuple[int, int] | None) -> str:
        logprobs = None
        if body.get("logprobs"):
            logprobs = {"content": [self._logprob(body, token, index)], "refusal": None}
        return self._each_choice(body, {"content": token}, logprobs)

    def tool_call_events(self, body: dict[str, Any], index: int, name: str, arguments: str) -> list[str]:
        size = max(1, -(-len(arguments) // _ARGUMENT_PIECES))
        pieces = [arguments[start : start + size] for start in range(0, len(arguments), size)]
        events = []
        choices = range(self.choices(body))
        first = [
            {
                "index": choice,
                "delta": {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": self._call_id(choice, index),
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                },
                "logprobs": None,
                "finish_reason": None,
            }
            for choice in choices
        ]
        events.append(self._chunk(body, first))
        for piece in pieces:
            fragment = {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            events.append(self._each_choice(body, fragment))
        return events

    def error_event(self) -> str:
        error = {
            "message": "The server is overloaded. Please try again.",
            "type": "server_error",
            "code": None,
        }
        return sse({"error": error})

    def closing(self, body: dict[str, Any], usage: tuple[int, int] | None, finish: str) -> list[str]:
        events = [self._each_choice(body, {}, finish=finish)]
        options = body.get("stream_options") or {}
        if usage is not None and options.get("include_usage"):
            events.append(self._chunk(body, [], usage=self._usage(usage)))
        events.append("data: [DONE]\n\n")
        return events
