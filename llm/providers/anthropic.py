"""Anthropic messages through the official `anthropic` SDK.

The request, from the normalized one:
- The system prompt goes in the top-level `system` field. A system message that stood later in
  the conversation becomes a user-role text "System: ..." where it stood.
- Messages alternate user and assistant: turns of the same role in a row join into one message
  (the API wants the results of one assistant turn's tool calls in ONE user message, and its
  `tool_result` blocks first in it); a `tool` message is a `tool_result` block of a user turn.
- Content parts become blocks: text, `image` (a base64 or URL source), `document` (a PDF as
  base64, a text/* file as a plain-text source). Anthropic takes no audio: an LLMError.
- An assistant's tool calls become `tool_use` blocks whose `input` is the arguments' JSON.
  Arguments that are not a JSON object (a call cut off by the token limit) are sent as `{}`,
  so that the conversation can go on: its `tool_result` still answers it by id.
- temperature and top_p are sent through `extra_body`: the SDK's `create` no longer takes
  them, the API still does for the models that take sampling parameters (an operator whose
  model refuses them leaves them unset).
- The other OpenAI parameters the kind takes are mapped as llm.parameters says: stop,
  tools, tool_choice, parallel_tool_calls, response_format (`output_config.format`, or an
  instruction in the system prompt for any JSON object), reasoning_effort
  (`output_config.effort`; "none" disables thinking) and user (`metadata.user_id`).

The stream: `text_delta` is text, `thinking_delta` reasoning, and each `tool_use` block a
tool call, numbered from 0 in the reply's order, its input streamed as `input_json_delta`
fragments. Usage arrives in two parts: input tokens in `message_start`, output tokens in
`message_delta`.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re
import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import anthropic
import httpx2

from llm.providers.base import (
    AdapterEvent,
    Params,
    connection_error,
    finish_reason,
    mid_stream_error,
    retry_after_seconds,
    shared_client,
    ssl_context,
    status_error,
    timeout_error,
)
from llm.types import (
    AudioPart,
    ChatMessage,
    ChatRequest,
    ContentPart,
    FilePart,
    Finish,
    ImagePart,
    LLMError,
    ModelTarget,
    ProviderConfig,
    ReasoningDelta,
    TextDelta,
    TextPart,
    Tool,
    ToolCallDelta,
    Usage,
)

# Anthropic's error types and the statuses they come with outside a stream.
_ERROR_STATUSES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def client_for(provider: ProviderConfig) -> anthropic.AsyncAnthropic:
    """An SDK client for one call; the SDK's own retries are off (the router retries)."""
    read = max(provider.first_token_timeout, provider.idle_timeout) + 5
    return anthropic.AsyncAnthropic(
        base_url=provider.base_url or "https://api.anthropic.com",
        api_key=provider.api_key,
        timeout=anthropic.Timeout(read, connect=provider.connect_timeout),
        max_retries=0,
        default_headers=dict(provider.extra_headers),
        http_client=anthropic.DefaultAsyncHttpxClient(verify=ssl_context()),
    )


_LATE_SYSTEM = "System: "
_JSON_OBJECT = "Reply with one JSON object and nothing else: no text before or after it, no code fence."
# OpenAI's reasoning efforts, in Anthropic's words ("none" turns thinking off instead).
_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh"}
_TOOL_CHOICES = {"auto": "auto", "none": "none", "required": "any", "function": "tool"}
# Anthropic's tool_use ids are [a-zA-Z0-9_-]+; other providers' ids may hold more.
_NOT_IN_TOOL_IDS = re.compile(r"[^a-zA-Z0-9_-]")


def request_body(target: ModelTarget, request: ChatRequest, params: Params) -> dict[str, Any]:
    """The keyword arguments of `messages.create` for this request."""
    body: dict[str, Any] = {
        "model": target.upstream_name,
        "messages": request_messages(request),
        # Anthropic requires a limit; the model's own is the natural one.
        "max_tokens": params.max_tokens if params.max_tokens is not None else target.max_output_tokens,
    }
    response_format = request.response_format
    schema = response_format.schema if response_format and response_format.type == "json_schema" else None
    wants_object = response_format is not None and response_format.type != "text" and not schema
    system = "\n\n".join(text for text in (request.system, _JSON_OBJECT if wants_object else "") if text)
    if system:
        body["system"] = system
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
        if (tool_choice := _tool_choice(request)) is not None:
            body["tool_choice"] = tool_choice
    output_config: dict[str, Any] = {}
    if schema:
        output_config["format"] = {"type": "json_schema", "schema": _output_schema(schema)}
    effort = request.options.get("reasoning_effort")
    if effort == "none":
        body["thinking"] = {"type": "disabled"}
    elif isinstance(effort, str) and effort in _EFFORTS:
        output_config["effort"] = _EFFORTS[effort]
    if output_config:
        body["output_config"] = output_config
    if user := request.options.get("user"):
        body["metadata"] = {"user_id": str(user)}
    sampling = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": request.options.get("top_k"),
    }
    extra = {name: value for name, value in sampling.items() if value is not None} | dict(params.extra)
    if extra:
        body["extra_body"] = extra
    return body


def request_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """The conversation as Anthropic's alternating user and assistant messages."""
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue  # the API refuses a message with no content
        if messages and messages[-1]["role"] == role:
            blocks = messages[-1]["content"] + blocks
            messages[-1]["content"] = [block for block in blocks if block["type"] == "tool_result"] + [
                block for block in blocks if block["type"] != "tool_result"
            ]
        else:
            messages.append({"role": role, "content": blocks})
    return messages


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "system":
        return [{"type": "text", "text": _LATE_SYSTEM + message.text}] if message.text.strip() else []
    if message.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(message.tool_call_id)}
        content = message.content if isinstance(message.content, str) else _part_blocks(message.parts)
        if content:
            result["content"] = content
        return [result]
    blocks = _part_blocks(message.parts)
    for call in message.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": _tool_id(call.id),
                "name": call.name,
                "input": _tool_input(call.arguments),
            }
        )
    return blocks


def _part_blocks(parts: tuple[ContentPart, ...]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            if part.text.strip():  # the API refuses empty text blocks
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            source = (
                {"type": "base64", "media_type": part.media_type, "data": part.data}
                if part.inline
                else {"type": "url", "url": part.url}
            )
            blocks.append({"type": "image", "source": source})
        elif isinstance(part, FilePart):
            blocks.append(_document(part))
        elif isinstance(part, AudioPart):
            raise LLMError("upstream_bad_request", "Anthropic does not take audio input.")
    return blocks


def _document(part: FilePart) -> dict[str, Any]:
    if not part.data:
        # A file id names a file of another provider (or of Anthropic's beta Files API).
        raise LLMError(
            "upstream_bad_request", "Anthropic does not take files by id: send the file's content."
        )
    media_type = part.media_type or mimetypes.guess_type(part.filename)[0] or ""
    source: dict[str, Any]
    if media_type == "application/pdf":
        source = {"type": "base64", "media_type": media_type, "data": part.data}
    elif media_type.startswith("text/"):
        try:
            text = base64.b64decode(part.data).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            raise LLMError("upstream_bad_request", "The file's content is not valid base64.") from None
        source = {"type": "text", "media_type": "text/plain", "data": text}
    else:
        raise LLMError(
            "upstream_bad_request",
            f"Anthropic does not take {media_type or 'untyped'} files, only PDF and plain text.",
        )
    document: dict[str, Any] = {"type": "document", "source": source}
    if part.filename:
        document["title"] = part.filename
    return document


def _tool_id(call_id: str) -> str:
    return _NOT_IN_TOOL_IDS.sub("_", call_id)


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _tool(tool: Tool) -> dict[str, Any]:
    schema = dict(tool.parameters or {}) or {"type": "object", "properties": {}}
    schema.setdefault("type", "object")
    definition: dict[str, Any] = {"name": tool.name, "input_schema": schema}
    if tool.description:
        definition["description"] = tool.description
    if tool.strict:
        definition["strict"] = True
    return definition


def _tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None and request.parallel_tool_calls is not False:
        return None  # Anthropic's default is auto, with parallel calls
    mode = choice.mode if choice is not None else "auto"
    tool_choice: dict[str, Any] = {"type": _TOOL_CHOICES[mode]}
    if choice is not None and mode == "function":
        tool_choice["name"] = choice.name
    if request.parallel_tool_calls is False and mode != "none":
        tool_choice["disable_parallel_tool_use"] = True
    return tool_choice


def _output_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema as structured outputs take it (no additional properties, say), by the SDK's own
    transformation; as it is when that cannot read it."""
    try:
        return anthropic.transform_schema(dict(schema))
    except (ValueError, TypeError, AttributeError):
        return dict(schema)


async def stream(
    target: ModelTarget, request: ChatRequest, params: Params
) -> AsyncGenerator[AdapterEvent, None]:
    input_tokens: int | None = None
    output_tokens: int | None = None
    reason: str | None = None
    calls: dict[int, int] = {}  # a tool_use block's index -> the number of its call in the reply
    try:
        body = request_body(target, request, params)
        client = shared_client(target.provider, client_for)
        events = await client.messages.create(**body, stream=True)
        async with events:  # leaving early (cancelled) closes this call's connection
            async for event in events:
                if event.type == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        yield TextDelta(delta.text)
                    elif delta.type == "thinking_delta" and delta.thinking:
                        yield ReasoningDelta(delta.thinking)
                    elif delta.type == "input_json_delta" and delta.partial_json and event.index in calls:
                        yield ToolCallDelta(calls[event.index], arguments=delta.partial_json)
                elif event.type == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        number = calls[event.index] = len(calls)
                        yield ToolCallDelta(
                            number,
                            id=block.id or f"call_{uuid.uuid4().hex[:24]}",
                            name=block.name,
                            # Claude starts with an empty input; a server that sends it whole, here.
                            arguments=json.dumps(block.input) if block.input else "",
                        )
                    elif block.type == "text" and block.text:
                        yield TextDelta(block.text)
                    elif block.type == "thinking" and block.thinking:
                        yield ReasoningDelta(block.thinking)
                elif event.type == "message_start":
                    usage = getattr(event.message, "usage", None)
                    if usage is not None:
                        input_tokens = usage.input_tokens
                        output_tokens = usage.output_tokens
                elif event.type == "message_delta":
                    reason = event.delta.stop_reason or reason
                    usage = getattr(event, "usage", None)
                    if usage is not None and usage.output_tokens is not None:
                        output_tokens = usage.output_tokens
                    if usage is not None and usage.input_tokens is not None:
                        input_tokens = usage.input_tokens
    except anthropic.APIError as exc:
        raise error_for(target, exc) from None
    except httpx2.TransportError as exc:
        # The SDK passes a connection broken mid-stream through as it is.
        raise connection_error(target, exc) from None
    if input_tokens is not None and output_tokens is not None:
        yield Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    yield Finish(finish_reason(reason))


def error_for(target: ModelTarget, exc: anthropic.APIError) -> LLMError:
    """The LLMError for an SDK exception; its message never holds the key."""
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        if status < 400:
            # An `error` event inside a stream that opened with 200: its type says what happened.
            kind = exc.body.get("error", {}).get("type") if isinstance(exc.body, dict) else None
            status = _ERROR_STATUSES.get(str(kind), 500)
        return status_error(
            target, status, _upstream_message(exc), retry_after=retry_after_seconds(exc.response.headers)
        )
    if isinstance(exc, anthropic.APITimeoutError):
        return timeout_error(target, "the connection or a read took too long")
    if isinstance(exc, anthropic.APIConnectionError):
        return connection_error(target, exc.__cause__ or exc)
    return mid_stream_error(target, _upstream_message(exc))


def _upstream_message(exc: anthropic.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            kind = error.get("type")
            return f"{error['message']} ({kind})" if kind else str(error["message"])
    return exc.message
