"""Anthropic's Messages API on Nexus keys: POST /v1/messages and /v1/messages/count_tokens.

The `anthropic` SDKs and the tools built on them (Claude Code-style agents pointed at Nexus
with ANTHROPIC_BASE_URL) work unchanged, against any model of the catalog, whatever its
provider kind. A key comes as `x-api-key` or `Authorization: Bearer` (accounts.authentication);
`anthropic-version` and `anthropic-beta` are accepted and ignored.

A request is read into the same CompletionCall as Chat Completions and runs the same turn
(chats.gateway.gateway_turn_prepare: maintenance, admission, budgets, fallbacks, stop on
disconnect, usage record); this module translates the body in and the turn's events out:
reasoning as `thinking` blocks, text as `text` blocks, each tool call as a `tool_use` block,
a new block whenever the kind changes, with Anthropic's stream events around them.

What has no field of its own in the normalized request travels as llm.parameters says:
`thinking` and `output_config.effort` become `reasoning_effort` (a budget below 4,096 tokens
is low, below 16,384 medium, else high; `disabled` is none), `metadata.user_id` is `user`,
`top_k` an option (Anthropic, Gemini and OpenAI-compatible servers take it; OpenAI's own API
has none, so it is dropped there), `disable_parallel_tool_use` is
`parallel_tool_calls: false`. A `tool_result` with `is_error` reaches the model as its text
after "Error: ", since the other kinds have no such flag. Thinking blocks a client sends back
are dropped: their signatures are Nexus's, which no provider could check. The turn does not
tell which stop sequence ended a reply, so `stop_sequence` is always null and such a reply
ends with `end_turn`.

Errors are Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`, with its
statuses: 400 invalid_request_error, 401 authentication_error, 403 permission_error, 404
not_found_error, 413 request_too_large, 429 rate_limit_error (with Retry-After; a spent budget
too, saying so), 500 api_error for an upstream that failed (Nexus's 502), 504 timeout_error,
and 529 overloaded_error for an upstream or a Nexus dependency that is unavailable (503),
which Anthropic's clients retry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseBase, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiKey
from chats.completions import CompletionCall, read_inline_data
from chats.gateway import SAVE_HEADER, GatewayView, PendingCompletion, gateway_turn_prepare, upstream_status
from chats.streams import StreamEvent
from chats.turn import ModelNotAvailable, PreparedTurn, model_route
from llm.tokens import estimate_request_tokens
from llm.types import (
    Capability,
    ChatMessage,
    ChatRequest,
    ContentPart,
    FilePart,
    ImagePart,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from nexus.lib.errors import ApiError, exception_handler, retry_after_header

# --- errors ----------------------------------------------------------------------------------

# Anthropic's error types by the status it answers with.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# Nexus's statuses that Anthropic does not use, as Anthropic's clients expect them.
_STATUSES = {502: 500, 503: 529}
# Upstream failures by code where the status alone says too little.
_CODE_STATUSES = {"upstream_unavailable": 529}


def anthropic_status(status: int, code: str = "") -> int:
    """The status Anthropic would answer with for a Nexus error of this status and code."""
    return _CODE_STATUSES.get(code) or _STATUSES.get(status, status)


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error body for an (already Anthropic) status."""
    kind = _ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _message_for(code: str, message: str) -> str:
    if code == "insufficient_quota":
        return f"The budget is spent: {message}"
    return message


def messages_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Nexus's handler, its answer re-shaped as Anthropic's; a database that is down is a 529."""
    if isinstance(exc, ModelNotAvailable):
        exc = ApiError(exc.message, code="model_not_found", status_code=404, param="model")
    elif isinstance(exc, OperationalError | InterfaceError):  # PostgreSQL down or restarting
        exc = ApiError(
            "Nexus cannot reach its database right now; try again shortly.",
            code="service_unavailable",
            status_code=503,
        )
    response = exception_handler(exc, context)
    if response is None or not isinstance(response.data, dict) or "error" not in response.data:
        return response
    error = response.data["error"]
    status = anthropic_status(response.status_code, str(error.get("code") or ""))
    response.status_code = status
    response.data = anthropic_error(status, _message_for(str(error.get("code")), str(error.get("message"))))
    return response


class InvalidRequest(ApiError):
    default_code = "invalid_request_error"


def _invalid(param: str, problem: str) -> InvalidRequest:
    """A 400 whose message names the field first, as Anthropic's do ("max_tokens: Field required")."""
    return InvalidRequest(f"{param}: {problem}" if param else problem, param=param or None)


# --- the request -----------------------------------------------------------------------------

# The fields of a Messages request; those Nexus cannot honour but that change nothing a client
# relies on (caching and routing hints) are taken and ignored.
_HINTS = {"cache_control", "service_tier", "speed", "inference_geo", "diagnostics", "context_management"}
_COUNT_FIELDS = {"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config", *_HINTS}
_CREATE_FIELDS = {
    *_COUNT_FIELDS,
    "max_tokens",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "metadata",
    "stream",
}
# Anthropic's server-side features: no other provider has them.
_SERVER_FEATURES = {"container", "mcp_servers"}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_USER_BLOCKS = ("text", "image", "document", "tool_result")
_ASSISTANT_BLOCKS = ("text", "thinking", "redacted_thinking", "tool_use")
_TOOL_CHOICES: dict[str, Literal["auto", "none", "required", "function"]] = {
    "auto": "auto",
    "any": "required",
    "tool": "function",
    "none": "none",
}
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
_THINKING_BUDGET_MINIMUM = 1024


def _text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _invalid(param, "Input should be a valid string")
    # PostgreSQL's text cannot hold NUL: refused here, not a 500 when the exchange is saved.
    if "\x00" in value:
        raise _invalid(param, "Null characters are not allowed")
    return value


def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(param, "Input should be a valid dictionary or object")
    return value


def _list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise _invalid(param, "Input should be a valid list")
    return value


def _integer(body: dict[str, Any], name: str, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(name, "Input should be a valid integer")
    if value < minimum:
        raise _invalid(name, f"Input should be greater than or equal to {minimum}")
    return value


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _invalid(name, "Input should be a number from 0 to 1")
    return float(value)


def _image(block: dict[str, Any], param: str) -> ImagePart:
    source = _object(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = source.get("media_type")
        if media_type not in _IMAGE_TYPES:
            raise _invalid(f"{param}.source.media_type", f"Input should be {', '.join(_IMAGE_TYPES)}")
        data = _text(source.get("data"), f"{param}.source.data")
        url = f"data:{media_type};base64,{data}"
        read_inline_data(url, f"{param}.source.data", "image")
        return ImagePart(url=url)
    if kind == "url":
        url = _text(source.get("url"), f"{param}.source.url")
        if not url.startswith(("https://", "http://")):
            raise _invalid(f"{param}.source.url", "The image URL must be an http(s) URL")
        return ImagePart(url=url)
    if kind == "file":
        raise _invalid(f"{param}.source", "Images by file_id are not supported: send the image's data")
    raise _invalid(f"{param}.source.type", "Input should be 'base64' or 'url'")


def _document(block: dict[str, Any], param: str) -> ContentPart:
    source = _object(block.get("source"), f"{param}.source")
    kind = source.get("type")
    title = block.get("title")
    filename = _text(title, f"{param}.title") if title is not None else ""
    if kind == "base64":
        if source.get("media_type") != "application/pdf":
            raise _invalid(f"{param}.source.media_type", "Input should be 'application/pdf'")
        data = _text(source.get("data"), f"{param}.source.data")
        read_inline_data(f"data:application/pdf;base64,{data}", f"{param}.source.data", "file")
        return FilePart(data=data, media_type="application/pdf", filename=filename)
    if kind == "text":
        return TextPart(_text(source.get("data"), f"{param}.source.data"))
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return TextPart(_text(content, f"{param}.source.content"))
        texts = []
        for index, item in enumerate(_list(content, f"{param}.source.content")):
            where = f"{param}.source.content.{index}"
            if _object(item, where).get("type") != "text":
                raise _invalid(f"{where}.type", "A document's content blocks must be text")
            texts.append(_text(item.get("text"), f"{where}.text"))
        return TextPart("\n".join(texts))
    if kind in ("url", "file"):
        raise _invalid(
            f"{param}.source", "Documents by URL or file_id are not supported: send the document's data"
        )
    raise _invalid(f"{param}.source.type", "Input should be 'base64', 'text' or 'content'")


def _block_text(block: dict[str, Any], param: str) -> str:
    text = _text(block.get("text"), f"{param}.text")
    if not text:
        raise _invalid(f"{param}.text", "text content blocks must be non-empty")
    return text


class _Messages:
    """Reads Anthropic's messages into the normalized conversation, checking as Anthropic
    checks: roles, block types, and that each tool_use is answered by a tool_result in the
    next message (and each tool_result answers one)."""

    def __init__(self) -> None:
        self.turns: list[ChatMessage] = []
        self.needs: dict[Capability, str] = {}
        self.call_names: dict[str, str] = {}

    def read(self, messages: Any) -> None:
        if messages is None:
            raise _invalid("messages", "Field required")
        messages = _list(messages, "messages")
        if not messages:
            raise _invalid("messages", "at least one message is required")
        unanswered: list[str] = []  # the tool_use ids of the message before
        for index, message in enumerate(messages):
            param = f"messages.{index}"
            message = _object(message, param)
            role = message.get("role")
            if role not in ("user", "assistant"):
                raise _invalid(f"{param}.role", "Input should be 'user' or 'assistant'")
            blocks = self.blocks(message.get("content"), param, role)
            last = index == len(messages) - 1
            if not blocks and not (last and role == "assistant"):
                raise _invalid(
                    param,
                    "all messages must have non-empty content except for the optional final "
                    "assistant message",
                )
            answered = [block.get("tool_use_id") for block in blocks if block.get("type") == "tool_result"]
            missing = [call_id for call_id in unanswered if call_id not in answered]
            if missing:
                raise _invalid(
                    f"messages.{index - 1}",
                    f"`tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` "
                    "block in the next message.",
                )
            if role == "user":
                self.read_user(blocks, param, expected=unanswered)
                unanswered = []
            else:
                unanswered = self.read_assistant(blocks, param)

    def blocks(self, content: Any, param: str, role: str) -> list[dict[str, Any]]:
        """The message's content as blocks (a string is one text block); each checked for its type."""
        if isinstance(content, str):
            return [{"type": "text", "text": _text(content, f"{param}.content")}] if content else []
        if content is None:
            raise _invalid(f"{param}.content", "Field required")
        allowed = _USER_BLOCKS if role == "user" else _ASSISTANT_BLOCKS
        blocks = []
        for index, block in enumerate(_list(content, f"{param}.content")):
            where = f"{param}.content.{index}"
            block = _object(block, where)
            if block.get("type") not in allowed:
                names = ", ".join(f"'{name}'" for name in allowed)
                raise _invalid(f"{where}.type", f"{role} messages take content blocks of type {names}")
            blocks.append(block)
        return blocks

    def read_user(self, blocks: list[dict[str, Any]], param: str, *, expected: list[str]) -> None:
        parts: list[ContentPart] = []
        results: list[ChatMessage] = []
        for index, block in enumerate(blocks):
            where = f"{param}.content.{index}"
            kind = block["type"]
            if kind == "text":
                parts.append(TextPart(_block_text(block, where)))
            elif kind == "image":
                parts.append(_image(block, where))
                self.needs.setdefault("vision", where)
            elif kind == "document":
                parts.append(_document(block, where))
            else:
                results.append(self.tool_result(block, where, expected=expected))
        # A tool's results come first: they answer the turn before, what the user adds follows.
        self.turns.extend(results)
        if parts:
            self.turns.append(ChatMessage(role="user", content=tuple(parts)))

    def tool_result(self, block: dict[str, Any], param: str, *, expected: list[str]) -> ChatMessage:
        call_id = _text(block.get("tool_use_id"), f"{param}.tool_use_id")
        if call_id not in expected:
            raise _invalid(
                param,
                f"unexpected `tool_use_id` found in `tool_result` blocks: {call_id}. Each `tool_result` "
                "block must have a corresponding `tool_use` block in the previous message.",
            )
        is_error = block.get("is_error")
        if is_error is not None and not isinstance(is_error, bool):
            raise _invalid(f"{param}.is_error", "Input should be a valid boolean")
        given = block.get("content")
        parts: list[ContentPart] = []
        if isinstance(given, str):
            parts.append(TextPart(_text(given, f"{param}.content")))
        elif given is not None:
            for index, item in enumerate(_list(given, f"{param}.content")):
                where = f"{param}.content.{index}"
                kind = _object(item, where).get("type")
                if kind == "text":
                    parts.append(TextPart(_text(item.get("text"), f"{where}.text")))
                elif kind == "image":
                    parts.append(_image(item, where))
                    self.needs.setdefault("vision", where)
                elif kind == "document":
                    parts.append(_document(item, where))
                else:
                    raise _invalid(
                        f"{where}.type", "tool_result content blocks are 'text', 'image' or 'document'"
                    )
        self.needs.setdefault("tools", param)
        if all(isinstance(part, TextPart) for part in parts):
            text = "\n".join(part.text for part in parts if isinstance(part, TextPart))
            content: str | tuple[ContentPart, ...] = (
                (f"Error: {text}" if text else "Error") if is_error else text
            )
        else:
            content = (TextPart("Error:"), *parts) if is_error else tuple(parts)
        return ChatMessage(
            role="tool", content=content, tool_call_id=call_id, name=self.call_names.get(call_id, "")
        )

    def read_assistant(self, blocks: list[dict[str, Any]], param: str) -> list[str]:
        """Adds the assistant's turn; the ids of the tools it called, which the next message answers."""
        texts: list[str] = []
        calls: list[ToolCall] = []
        for index, block in enumerate(blocks):
            where = f"{param}.content.{index}"
            kind = block["type"]
            if kind == "text":
                texts.append(_text(block.get("text"), f"{where}.text"))
            elif kind == "tool_use":
                call_id = _text(block.get("id"), f"{where}.id")
                name = _text(block.get("name"), f"{where}.name")
                arguments = _object(block.get("input"), f"{where}.input")
                calls.append(ToolCall(id=call_id, name=name, arguments=json.dumps(arguments)))
                self.call_names[call_id] = name
                self.needs.setdefault("tools", where)
            # thinking and redacted_thinking: signed by Nexus, so no provider could take them back
        if texts or calls:
            self.turns.append(ChatMessage(role="assistant", content="".join(texts), tool_calls=tuple(calls)))
        return [call.id for call in calls]


def _system(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _text(value, "system")
    texts = []
    for index, block in enumerate(_list(value, "system")):
        where = f"system.{index}"
        if _object(block, where).get("type") != "text":
            raise _invalid(f"{where}.type", "Input should be 'text'")
        texts.append(_block_text(block, where))
    return "\n\n".join(texts)


def _tools(value: Any) -> tuple[Tool, ...]:
    if value is None:
        return ()
    tools = []
    for index, tool in enumerate(_list(value, "tools")):
        where = f"tools.{index}"
        tool = _object(tool, where)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise _invalid(
                f"{where}.type",
                f"{kind!r} is one of Anthropic's own tools; define it as a custom tool "
                "(name, description, input_schema) to use it with any model",
            )
        name = _text(tool.get("name"), f"{where}.name")
        if not _TOOL_NAME.match(name):
            raise _invalid(f"{where}.name", "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'")
        if tool.get("input_schema") is None:
            raise _invalid(f"{where}.input_schema", "Field required")
        schema = _object(tool["input_schema"], f"{where}.input_schema")
        if schema.get("type") != "object":
            raise _invalid(f"{where}.input_schema.type", "Input should be 'object'")
        strict = tool.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise _invalid(f"{where}.strict", "Input should be a valid boolean")
        description = tool.get("description")
        tools.append(
            Tool(
                name=name,
                description=_text(description, f"{where}.description") if description is not None else "",
                parameters=schema,
                strict=strict,
            )
        )
    names = [tool.name for tool in tools]
    if len(set(names)) != len(names):
        raise _invalid("tools", "Tool names must be unique")
    return tuple(tools)


def _tool_choice(value: Any, tools: tuple[Tool, ...]) -> tuple[ToolChoice | None, bool | None]:
    """The tool choice and parallel_tool_calls (False when parallel use is disabled)."""
    if value is None:
        return None, None
    choice = _object(value, "tool_choice")
    kind = choice.get("type")
    if kind not in _TOOL_CHOICES:
        raise _invalid("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None and not isinstance(disable, bool):
        raise _invalid("tool_choice.disable_parallel_tool_use", "Input should be a valid boolean")
    if not tools:
        if kind in ("any", "tool"):
            raise _invalid("tool_choice", "tool_choice may only be specified while providing tools")
        return None, None
    name = ""
    if kind == "tool":
        name = _text(choice.get("name"), "tool_choice.name")
        if name not in {tool.name for tool in tools}:
            raise _invalid("tool_choice.name", f"Tool {name!r} not found in the provided tools")
    return ToolChoice(mode=_TOOL_CHOICES[kind], name=name), False if disable else None


def _thinking_effort(value: Any, max_tokens: int | None, needs: dict[Capability, str]) -> str | None:
    """The reasoning effort `thinking` asks for, by llm.parameters' name for it."""
    if value is None:
        return None
    thinking = _object(value, "thinking")
    kind = thinking.get("type")
    if kind == "disabled":
        return "none"
    if kind not in ("enabled", "adaptive", "between_tools"):
        raise _invalid("thinking.type", "Input should be 'enabled', 'adaptive' or 'disabled'")
    needs.setdefault("reasoning", "thinking")
    if kind != "enabled":
        return None  # the model decides how much to think
    budget = thinking.get("budget_tokens")
    if budget is None:
        raise _invalid("thinking.enabled.budget_tokens", "Field required")
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise _invalid("thinking.enabled.budget_tokens", "Input should be a valid integer")
    if budget < _THINKING_BUDGET_MINIMUM:
        raise _invalid(
            "thinking.enabled.budget_tokens",
            f"Input should be greater than or equal to {_THINKING_BUDGET_MINIMUM}",
        )
    if max_tokens is not None and budget >= max_tokens:
        raise _invalid("max_tokens", "`max_tokens` must be greater than `thinking.budget_tokens`")
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def _output_config(value: Any, needs: dict[Capability, str]) -> tuple[str | None, ResponseFormat | None]:
    """output_config's effort (as a reasoning effort) and format (as a response format)."""
    if value is None:
        return None, None
    config = _object(value, "output_config")
    effort = config.get("effort")
    if effort is not None and effort not in _EFFORTS:
        raise _invalid("output_config.effort", "Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
    response_format = None
    if config.get("format") is not None:
        spec = _object(config["format"], "output_config.format")
        if spec.get("type") != "json_schema":
            raise _invalid("output_config.format.type", "Input should be 'json_schema'")
        schema = _object(spec.get("schema"), "output_config.format.schema")
        response_format = ResponseFormat(type="json_schema", name="response", schema=schema)
        needs.setdefault("structured_output", "output_config.format")
    return (_EFFORTS[effort] if effort else None), response_format


def _metadata(value: Any) -> str | None:
    """metadata.user_id, the only field Anthropic's metadata has."""
    if value is None:
        return None
    metadata = _object(value, "metadata")
    for name in metadata:
        if name != "user_id":
            raise _invalid(f"metadata.{name}", "Extra inputs are not permitted")
    user_id = metadata.get("user_id")
    if user_id is None:
        return None
    user_id = _text(user_id, "metadata.user_id")
    if len(user_id) > 256:
        raise _invalid("metadata.user_id", "String should have at most 256 characters")
    return user_id or None


def _stop_sequences(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = _list(value, "stop_sequences")
    return tuple(_text(stop, f"stop_sequences.{index}") for index, stop in enumerate(stops))


def parse_messages_request(body: Any, *, counting: bool = False) -> CompletionCall:
    """Anthropic's request body (of count_tokens when `counting`) as a CompletionCall; a 400
    naming what is wrong, in Anthropic's words where it has them."""
    if not isinstance(body, dict):
        raise _invalid("", "The request body must be a JSON object.")
    fields = _COUNT_FIELDS if counting else _CREATE_FIELDS
    for name in body:
        if name in _SERVER_FEATURES:
            raise _invalid(name, "This runs on Anthropic's servers only; Nexus does not support it")
        if name not in fields:
            raise _invalid(name, "Extra inputs are not permitted")
    if body.get("model") is None:
        raise _invalid("model", "Field required")
    model = _text(body["model"], "model")
    if not model:
        raise _invalid("model", "String should have at least 1 character")
    max_tokens = None
    if not counting:
        if body.get("max_tokens") is None:
            raise _invalid("max_tokens", "Field required")
        max_tokens = _integer(body, "max_tokens", 1)
    messages = _Messages()
    messages.read(body.get("messages"))
    needs = dict(messages.needs)
    tools = _tools(body.get("tools"))
    if tools:
        needs.setdefault("tools", "tools")
    tool_choice, parallel = _tool_choice(body.get("tool_choice"), tools)
    effort, response_format = _output_config(body.get("output_config"), needs)
    thinking_effort = _thinking_effort(body.get("thinking"), max_tokens, needs)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _invalid("stream", "Input should be a valid boolean")

    options: dict[str, Any] = {}
    if effort or thinking_effort:
        options["reasoning_effort"] = effort or thinking_effort
    if (top_k := _integer(body, "top_k", 0)) is not None:
        options["top_k"] = top_k
    if user := _metadata(body.get("metadata")):
        options["user"] = user
    request = ChatRequest(
        messages=tuple(messages.turns),
        system=_system(body.get("system")),
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        max_tokens=max_tokens,
        stop=_stop_sequences(body.get("stop_sequences")),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        response_format=response_format,
        options=options,
    )
    return CompletionCall(model=model, request=request, stream=stream, needs=needs)


# --- the reply -------------------------------------------------------------------------------

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def _stop_reason(finish_reason: str | None) -> str:
    return _STOP_REASONS.get(finish_reason or "stop", "end_turn")


def _usage(data: dict[str, Any]) -> dict[str, int]:
    usage = data.get("usage") or {}
    return {
        "input_tokens": int(usage.get("input_tokens", 0)),
        "output_tokens": int(usage.get("output_tokens", 0)),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _tool_input(arguments: str) -> dict[str, Any]:
    """A call's arguments as the object Anthropic's `input` is; {} for what is not one (a cut-off call)."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _Content:
    """The reply's content blocks, put together from the turn's events, and the stream events
    (name and data) that tell a client of each step: a block per run of one kind, a block per
    tool call."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.blocks: list[dict[str, Any]] = []
        self.arguments: dict[int, list[str]] = {}  # a tool_use block's index -> its input's JSON text
        self.calls: dict[int, int] = {}  # the turn's tool call index -> its block's index
        self.open: int | None = None

    def add(self, item: StreamEvent) -> list[tuple[str, dict[str, Any]]]:
        data = item.data
        if data.get("choice", 0):
            return []  # a message has one reply
        if item.event == "delta":
            return self._written("text", data["content"])
        if item.event == "reasoning":
            return self._written("thinking", data["content"])
        if item.event == "tool_call":
            return self._tool_call(data)
        return []

    def finish(self) -> list[tuple[str, dict[str, Any]]]:
        return self._close()

    def _close(self) -> list[tuple[str, dict[str, Any]]]:
        if self.open is None:
            return []
        index, self.open = self.open, None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _start(self, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events = self._close()
        self.open = len(self.blocks)
        self.blocks.append(block)
        start = {"type": "content_block_start", "index": self.open, "content_block": dict(block)}
        return [*events, ("content_block_start", start)]

    def _written(self, kind: str, text: str) -> list[tuple[str, dict[str, Any]]]:
        events: list[tuple[str, dict[str, Any]]] = []
        if self.open is None or self.blocks[self.open]["type"] != kind:
            empty = (
                {"type": "text", "text": ""}
                if kind == "text"
                else {"type": "thinking", "thinking": "", "signature": ""}
            )
            events += self._start(empty)
        assert self.open is not None  # noqa: S101 - just started
        self.blocks[self.open][kind] += text
        delta = (
            {"type": "text_delta", "text": text}
            if kind == "text"
            else {"type": "thinking_delta", "thinking": text}
        )
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": self.open, "delta": delta})
        )
        return events

    def _tool_call(self, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events: list[tuple[str, dict[str, Any]]] = []
        index = self.calls.get(data["index"])
        if index is None:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": data.get("id") or f"toolu_{self.token}_{data['index']}",
                "name": data.get("name") or "",
                "input": {},
            }
            events += self._start(block)
            index = self.calls[data["index"]] = len(self.blocks) - 1
            self.arguments[index] = []
        elif data.get("name"):
            self.blocks[index]["name"] += data["name"]
        if data.get("arguments"):
            self.arguments[index].append(data["arguments"])
            delta = {"type": "input_json_delta", "partial_json": data["arguments"]}
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        return events

    def content(self) -> list[dict[str, Any]]:
        """The blocks as a whole message has them: tool inputs parsed."""
        return [
            {**block, "input": _tool_input("".join(self.arguments[index]))}
            if block["type"] == "tool_use"
            else block
            for index, block in enumerate(self.blocks)
        ]


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


class MessagesSurface:
    """How the Messages API speaks a turn (chats.gateway.Surface)."""

    def __init__(self, prepared: PreparedTurn, call: CompletionCall) -> None:
        token = prepared.stream_key.rsplit(":", 1)[-1]
        self.id = f"msg_{token}"
        self.model = call.model
        self.stream = call.stream
        # message_start tells the input tokens before the provider has counted them: Nexus's estimate.
        self.input_estimate = estimate_request_tokens(prepared.request)
        self.content = _Content(token)

    def _message(
        self, content: list[dict[str, Any]], stop_reason: str | None, usage: dict[str, int]
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }

    def opening(self) -> bytes:
        usage = {**_usage({}), "input_tokens": self.input_estimate}
        start = {"type": "message_start", "message": self._message([], None, usage)}
        return _sse("message_start", start) + _sse("ping", {"type": "ping"})

    def encoded(self, item: StreamEvent) -> bytes:
        if item.event == "done":
            usage = _usage(item.data)
            delta = {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(item.data.get("finish_reason")), "stop_sequence": None},
                "usage": usage,
            }
            events = [
                *self.content.finish(),
                ("message_delta", delta),
                ("message_stop", {"type": "message_stop"}),
            ]
        elif item.event == "error":
            error = item.data["error"]
            status = anthropic_status(upstream_status(error["code"]), error["code"])
            events = [("error", anthropic_error(status, error["message"]))]
        else:
            events = self.content.add(item)
        return b"".join(_sse(name, data) for name, data in events)

    def whole(self, events: list[StreamEvent]) -> dict[str, Any]:
        for item in events:
            self.content.add(item)
        self.content.finish()
        end = events[-1].data
        return self._message(self.content.content(), _stop_reason(end.get("finish_reason")), _usage(end))

    def error_response(self, data: dict[str, Any]) -> HttpResponse:
        """A turn that failed before any output, with Anthropic's status and error type."""
        error = data["error"]
        status = anthropic_status(upstream_status(error["code"]), error["code"])
        response = JsonResponse(anthropic_error(status, error["message"]), status=status)
        if status == 429 and error.get("retry_after") is not None:
            response["Retry-After"] = retry_after_header(float(error["retry_after"]))
        return response


# --- views -----------------------------------------------------------------------------------


class _AnthropicView(GatewayView):
    """An endpoint of the Messages API: Anthropic's error shape, and its `request-id` header."""

    @property
    def max_request_bytes(self) -> int:
        return int(settings.MAX_AI_REQUEST_BYTES)  # images and documents travel inline

    def get_exception_handler(self) -> Callable[..., Response | None]:
        return messages_exception_handler

    def request_id_header(self, request: Request) -> dict[str, str]:
        request_id = getattr(request._request, "request_id", "")  # set by nexus.middleware
        return {"request-id": f"req_{request_id}"} if request_id else {}

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if not isinstance(response, PendingCompletion):  # that one is answered later, with its headers
            for name, value in self.request_id_header(request).items():
                response[name] = value
        return response


class MessagesView(_AnthropicView):
    @extend_schema(
        operation_id="v1_messages_create",
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="An Anthropic Message; with stream=true, an event stream of Anthropic's events.",
            )
        },
    )
    def post(self, request: Request) -> HttpResponseBase:
        """A reply of any catalog model in Anthropic's Message format, or streamed as its events."""
        call = parse_messages_request(request.data)
        save = request.headers.get(SAVE_HEADER, "").lower() in ("1", "true", "yes")
        prepared = gateway_turn_prepare(request, call, save=save)
        return PendingCompletion(prepared, MessagesSurface(prepared, call), self.request_id_header(request))


class CountTokensView(_AnthropicView):
    @extend_schema(
        operation_id="v1_messages_count_tokens",
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description='{"input_tokens": n}')},
    )
    def post(self, request: Request) -> Response:
        """Nexus's estimate of the request's input tokens: no provider is asked, nothing is charged."""
        call = parse_messages_request(request.data, counting=True)
        # The same checks as a call of the model: the key may use it, it exists (or is an alias).
        model_route(call.model, api_key=request.auth if isinstance(request.auth, ApiKey) else None)
        return Response({"input_tokens": estimate_request_tokens(call.request)})
