"""The fake upstream's Anthropic Messages wire format.

A reply is a list of content blocks, streamed one after the other with their own indexes:
the reasoning as a `thinking` block (its text, then a `signature_delta`), the reply's text as
a `text` block, then one `tool_use` block per tool call, its input streamed as
`input_json_delta` fragments. A reply that only calls tools has no text block, as Claude's
have none. The request is checked as the real API checks it where an adapter could go wrong
(roles, block types and sources, tool_use / tool_result pairing): a 400 otherwise.
"""

from __future__ import annotations

import base64
import json
import re
from typing import TYPE_CHECKING, Any

from fake_upstream.protocols import Protocol, sse

if TYPE_CHECKING:
    from fake_upstream.server import Exchange

# Claude streams a tool's input in small pieces; this many characters a piece.
_JSON_FRAGMENT = 10
_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_BLOCKS = {
    "user": {"text", "image", "document", "tool_result"},
    "assistant": {"text", "thinking", "redacted_thinking", "tool_use"},
}
_IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


class BadMessages(ValueError):
    """A request the real API refuses with a 400 invalid_request_error (the server answers it)."""


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
    _STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}

    def __init__(self, exchange: Exchange) -> None:
        super().__init__(exchange)
        self._blocks = 0  # content blocks started so far: the next one's index
        self._open: str | None = None  # the type of the block streaming now

    def api_key(self) -> str:
        # The SDK sends `x-api-key`, or, since its 2026 versions, a Bearer token.
        headers = self.exchange.headers
        return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")

    def max_tokens(self, body: dict[str, Any]) -> int | None:
        # The server asks for the limit before it answers: the moment to refuse what the real
        # API would refuse.
        check_request(body)
        limit = body.get("max_tokens")
        return limit if isinstance(limit, int) else None

    def context_length_message(self) -> str:
        return "prompt is too long: 210000 tokens > 200000 maximum"

    async def send_error(self, status: int, message: str, headers: dict[str, str]) -> None:
        kind = self._TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": f"req_{self.id}"}
        await self.exchange.send(status, body, {"request-id": f"req_{self.id}", **headers})

    def _stop_reason(self, finish: str) -> str:
        return self._STOP_REASONS.get(finish, finish)

    def _signature(self) -> str:
        return base64.b64encode(f"fake thinking signature {self.id}".encode()).decode()

    def _tool_id(self, index: int) -> str:
        return f"toolu_01{self.id[:20]}{index:02d}"

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
        content: list[dict[str, Any]] = []
        if self.knobs.reasoning:
            content.append(
                {"type": "thinking", "thinking": self.knobs.reasoning, "signature": self._signature()}
            )
        calls = self.knobs.tool_calls or []
        if text or not calls:
            content.append({"type": "text", "text": text})
        for index, call in enumerate(calls):
            content.append(
                {
                    "type": "tool_use",
                    "id": self._tool_id(index),
                    "name": str(call["name"]),
                    "input": json.loads(str(call["arguments"]) or "{}"),
                }
            )
        message = self._message(body, content, usage)
        message["stop_reason"] = self._stop_reason(finish)
        if usage is not None:
            message["usage"] = {"input_tokens": usage[0], "output_tokens": usage[1]}
        return message

    # --- streaming: blocks open one at a time, each closed when the next one starts ---

    def _start(self, block: dict[str, Any]) -> list[str]:
        events = self._stop()
        start = {"type": "content_block_start", "index": self._blocks, "content_block": block}
        events.append(sse(start, "content_block_start"))
        self._open = block["type"]
        self._blocks += 1
        return events

    def _stop(self) -> list[str]:
        if self._open is None:
            return []
        index = self._blocks - 1
        events = []
        if self._open == "thinking":
            signature = {"type": "signature_delta", "signature": self._signature()}
            events.append(self._delta(index, signature))
        events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        self._open = None
        return events

    @staticmethod
    def _delta(index: int, delta: dict[str, Any]) -> str:
        return sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")

    def opening(self, body: dict[str, Any], usage: tuple[int, int] | None) -> list[str]:
        start = {"type": "message_start", "message": self._message(body, [], usage)}
        return [sse(start, "message_start"), sse({"type": "ping"}, "ping")]

    def reasoning_delta(self, body: dict[str, Any], token: str, index: int) -> list[str]:
        events = []
        if self._open != "thinking":
            events += self._start({"type": "thinking", "thinking": "", "signature": ""})
        events.append(self._delta(self._blocks - 1, {"type": "thinking_delta", "thinking": token}))
        return events

    def error_event(self) -> str:
        return sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")

    def delta(self, body: dict[str, Any], token: str, index: int, usage: tuple[int, int] | None) -> str:
        events = []
        if self._open != "text":
            events += self._start({"type": "text", "text": ""})
        events.append(self._delta(self._blocks - 1, {"type": "text_delta", "text": token}))
        return "".join(events)

    def tool_call_events(self, body: dict[str, Any], index: int, name: str, arguments: str) -> list[str]:
        events = self._start({"type": "tool_use", "id": self._tool_id(index), "name": name, "input": {}})
        block = self._blocks - 1
        # Claude's first fragment is empty; the input follows in pieces.
        fragments = [
            "",
            *(arguments[at : at + _JSON_FRAGMENT] for at in range(0, len(arguments), _JSON_FRAGMENT)),
        ]
        events += [
            self._delta(block, {"type": "input_json_delta", "partial_json": piece}) for piece in fragments
        ]
        return events + self._stop()

    def closing(self, body: dict[str, Any], usage: tuple[int, int] | None, finish: str) -> list[str]:
        # An empty reply still has its (empty) text block; one that only calls tools has none.
        events = self._start({"type": "text", "text": ""}) if self._blocks == 0 else []
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop_reason(finish), "stop_sequence": None},
        }
        if usage is not None:
            delta["usage"] = {"output_tokens": usage[1]}
        return [
            *events,
            *self._stop(),
            sse(delta, "message_delta"),
            sse({"type": "message_stop"}, "message_stop"),
        ]


# --- what the real API refuses ----------------------------------------------------------


def check_request(body: dict[str, Any]) -> None:
    """Raises BadMessages, with the real API's kind of message, for a request it would refuse."""
    limit = body.get("max_tokens")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise BadMessages("max_tokens: Field required (a positive integer)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadMessages("messages: at least one message is required")
    unanswered: set[str] = set()
    for position, message in enumerate(messages):
        where = f"messages.{position}"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in _BLOCKS:
            raise BadMessages(f"{where}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        last = position == len(messages) - 1
        if not isinstance(blocks, list) or (not blocks and not (last and role == "assistant")):
            raise BadMessages(
                f"{where}: all messages must have non-empty content except for the final assistant"
            )
        answered = _check_blocks(where, role, blocks)
        if missing := unanswered - answered:
            raise BadMessages(
                f"{where}: tool_use ids were found without tool_result blocks immediately after: "
                f"{', '.join(sorted(missing))}"
            )
        if unexpected := answered - unanswered:
            raise BadMessages(
                f"{where}: unexpected tool_use_id found in tool_result blocks: "
                f"{', '.join(sorted(unexpected))}. Each tool_result block must have a corresponding "
                "tool_use block in the previous message."
            )
        unanswered = {block["id"] for block in blocks if block.get("type") == "tool_use"}
    for position, tool in enumerate(body.get("tools") or []):
        tool = tool if isinstance(tool, dict) else {}
        schema = tool.get("input_schema")
        if not tool.get("name") or not isinstance(schema, dict) or schema.get("type") != "object":
            raise BadMessages(f"tools.{position}: a tool needs a name and an input_schema of type object")
    choice = body.get("tool_choice")
    if choice is not None and (
        not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none")
    ):
        raise BadMessages("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")


def _check_blocks(where: str, role: str, blocks: list[Any]) -> set[str]:
    """The blocks' problems raised; the tool_use ids their tool_result blocks answer returned."""
    answered: set[str] = set()
    seen_other = False
    for position, block in enumerate(blocks):
        at = f"{where}.content.{position}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _BLOCKS[role]:
            raise BadMessages(f"{at}.type: a {role} message cannot hold a {kind!r} block")
        if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
            raise BadMessages(f"{at}: text content blocks must be non-empty")
        elif kind in ("image", "document"):
            _check_source(at, kind, block.get("source"))
        elif kind == "tool_use":
            if not _TOOL_ID.match(str(block.get("id", ""))) or not block.get("name"):
                raise BadMessages(f"{at}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
            if not isinstance(block.get("input"), dict):
                raise BadMessages(f"{at}.input: Input should be a valid dictionary")
        elif kind == "tool_result":
            if seen_other:
                raise BadMessages(f"{at}: tool_result blocks must come first in the message, before any text")
            answered.add(str(block.get("tool_use_id")))
        seen_other = seen_other or kind != "tool_result"
    return answered


def _check_source(at: str, kind: str, source: Any) -> None:
    source = source if isinstance(source, dict) else {}
    source_type, media_type = source.get("type"), source.get("media_type")
    if source_type == "url" and str(source.get("url", "")).startswith(("https://", "http://")):
        return
    if kind == "image" and source_type == "base64" and media_type in _IMAGE_TYPES and source.get("data"):
        return
    documents = (("base64", "application/pdf"), ("text", "text/plain"))
    if kind == "document" and (source_type, media_type) in documents and source.get("data"):
        return
    raise BadMessages(f"{at}.source: not a valid {kind} source: {json.dumps(source)[:200]}")
