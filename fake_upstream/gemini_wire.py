"""The fake upstream's Gemini generateContent wire format.

Beside text it speaks what the google-genai SDK reads from the real service: reasoning as
parts marked `"thought": true` (counted in `usageMetadata.thoughtsTokenCount`), function calls
as whole `functionCall` parts in one chunk (the first with a `thoughtSignature`, as Gemini 3
sends it), `candidateCount` alternative replies as candidates with their `index`, and
made-up but deterministic `logprobsResult` when `responseLogprobs` is set. Gemini has no
finish reason for tool calls: a reply that calls functions finishes STOP.

A knob tool call may carry an "id": the fake sends it on its functionCall part (Gemini does
not always give ids). Requests may hold any parts (inlineData, fileData, functionCall,
functionResponse); the server records them as sent.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from fake_upstream.protocols import Protocol

# The words the server's loop streams (Knobs.reply_tokens), to split a whole reply the same way.
_WORDS = re.compile(r"\s*\S+|\s+$")
_SIGNATURE = base64.b64encode(b"fake-thought-signature").decode()


def _chunk(response: dict[str, Any]) -> str:
    # Gemini's SSE lines end with CRLF pairs; the SDK must split on those too.
    return "data: " + json.dumps(response) + "\r\n\r\n"


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

    @staticmethod
    def _field(message: Any, name: str) -> Any:
        """A field of a request's message by its JSON name or its proto name, as Gemini reads
        them both (the SDK sends nested objects under their snake_case names)."""
        if not isinstance(message, dict):
            return None
        if name in message:
            return message[name]
        return message.get(re.sub(r"([A-Z])", r"_\1", name).lower())

    def _config(self, body: dict[str, Any], name: str) -> Any:
        return self._field(self._field(body, "generationConfig"), name)

    @staticmethod
    def _count(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def max_tokens(self, body: dict[str, Any]) -> int | None:
        return self._count(self._config(body, "maxOutputTokens"))

    def choices(self, body: dict[str, Any]) -> int:
        count = self._count(self._config(body, "candidateCount"))
        return count if count is not None and count > 1 else 1

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

    # --- pieces of replies ---

    @staticmethod
    def _finish(finish: str) -> str:
        # No TOOL_CALLS on this wire: a reply that calls functions ends STOP.
        return {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}.get(finish, finish.upper())

    def _response(self, body: dict[str, Any], candidates: list[dict[str, Any]], usage: Any) -> dict[str, Any]:
        response: dict[str, Any] = {"candidates": candidates}
        if usage is not None:
            response["usageMetadata"] = usage
        response["modelVersion"] = self.model(body)
        response["responseId"] = self.id
        return response

    def _candidates(
        self, body: dict[str, Any], parts: list[dict[str, Any]], **fields: Any
    ) -> list[dict[str, Any]]:
        """The same parts for each of the request's candidates."""
        return [
            {"content": {"parts": parts, "role": "model"}, **fields, "index": index}
            for index in range(self.choices(body))
        ]

    def _usage(self, usage: tuple[int, int] | None, *, final: bool) -> dict[str, int] | None:
        if usage is None:
            return None
        if not final:
            return {"promptTokenCount": usage[0], "totalTokenCount": usage[0]}
        # Gemini counts thinking apart from the candidates' tokens; together they are the output.
        thoughts = len(self.knobs.reasoning_tokens())
        metadata = {
            "promptTokenCount": usage[0],
            "candidatesTokenCount": usage[1] - thoughts,
            "totalTokenCount": sum(usage),
        }
        if thoughts:
            metadata["thoughtsTokenCount"] = thoughts
        return metadata

    def _logprobs(self, body: dict[str, Any], words: list[str], first: int) -> dict[str, Any]:
        """A candidate's made-up `logprobsResult` and `avgLogprobs` for these words of the reply
        (the first being word number `first`), the same values on every run; {} when not asked."""
        if not self._config(body, "responseLogprobs"):
            return {}
        top = self._count(self._config(body, "logprobs")) or 0
        chosen = []
        tops = []
        for index, word in enumerate(words, start=first):
            logprob = -round(0.05 * (index % 7 + 1), 4)
            chosen.append({"token": word, "logProbability": logprob})
            alternatives = [{"token": word, "logProbability": logprob}]
            alternatives += [
                {"token": f"alt{rank}", "logProbability": logprob - rank} for rank in range(1, top)
            ]
            tops.append({"candidates": alternatives[:top]})
        result: dict[str, Any] = {"chosenCandidates": chosen}
        if top:
            result["topCandidates"] = tops
        result["logProbabilitySum"] = sum(entry["logProbability"] for entry in chosen)
        average = result["logProbabilitySum"] / len(chosen) if chosen else 0.0
        return {"logprobsResult": result, "avgLogprobs": average}

    def _function_call(self, index: int, name: str, arguments: str) -> dict[str, Any]:
        try:
            args = json.loads(arguments)
        except ValueError:
            args = {}
        call: dict[str, Any] = {"name": name, "args": args if isinstance(args, dict) else {}}
        knobs = self.knobs.tool_calls or []
        if index < len(knobs) and knobs[index].get("id"):
            call["id"] = str(knobs[index]["id"])
        part: dict[str, Any] = {"functionCall": call}
        if index == 0:
            # Gemini 3 signs the first call of a turn; clients must send it back.
            part["thoughtSignature"] = _SIGNATURE
        return part

    # --- a whole reply ---

    def complete(
        self, body: dict[str, Any], text: str, usage: tuple[int, int] | None, finish: str
    ) -> dict[str, Any]:
        parts: list[dict[str, Any]] = []
        if self.knobs.reasoning:
            parts.append({"text": self.knobs.reasoning, "thought": True})
        if text or not self.knobs.tool_calls:
            parts.append({"text": text})
        parts += [
            self._function_call(index, str(call["name"]), str(call["arguments"]))
            for index, call in enumerate(self.knobs.tool_calls or ())
        ]
        candidates = self._candidates(
            body, parts, finishReason=self._finish(finish), **self._logprobs(body, _WORDS.findall(text), 0)
        )
        return self._response(body, candidates, self._usage(usage, final=True))

    # --- a stream ---

    def reasoning_delta(self, body: dict[str, Any], token: str, index: int) -> list[str]:
        return [
            _chunk(self._response(body, self._candidates(body, [{"text": token, "thought": True}]), None))
        ]

    def delta(self, body: dict[str, Any], token: str, index: int, usage: tuple[int, int] | None) -> str:
        candidates = self._candidates(body, [{"text": token}], **self._logprobs(body, [token], index))
        return _chunk(self._response(body, candidates, self._usage(usage, final=False)))

    def tool_call_events(self, body: dict[str, Any], index: int, name: str, arguments: str) -> list[str]:
        # Gemini sends a whole call, arguments and all, in one chunk.
        candidates = self._candidates(body, [self._function_call(index, name, arguments)])
        return [_chunk(self._response(body, candidates, None))]

    def error_event(self) -> str:
        error = {
            "code": 503,
            "message": "The model is overloaded. Please try again later.",
            "status": "UNAVAILABLE",
        }
        return _chunk({"error": error})

    def closing(self, body: dict[str, Any], usage: tuple[int, int] | None, finish: str) -> list[str]:
        candidates = self._candidates(body, [{"text": ""}], finishReason=self._finish(finish))
        return [_chunk(self._response(body, candidates, self._usage(usage, final=True)))]
