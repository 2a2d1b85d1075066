"""OpenAI chat completions through the official `openai` SDK: OpenAI, Azure OpenAI, DeepSeek
and any OpenAI-compatible server (Ollama, vLLM, OpenRouter, ...).

The request is OpenAI's own shape: the system prompt is the first message, with the role
`system`, and a system message that came later stays where it stood (OpenAI takes it there);
content parts, tool calls and tool results are OpenAI's parts and messages. The parameters
are those llm.parameters forwards for the provider kind, sent in the body as they are.

The SDK makes the request (base URL, auth, headers, status errors) and hands back the
response stream; its lines are read here with `json.loads`. The SDK's own chunk objects
cost about 200 µs a chunk in CPU, which capped a server process at a few dozen
concurrent streams; reading the lines costs a tenth of that. Every choice of the stream
(`n`) flows, tagged with its index; usage comes from the last chunk
(`stream_options.include_usage`), then a Finish per choice.

Embeddings go through the SDK's `embeddings.create`, asking for floats (the SDK would ask for
base64 and decode it itself otherwise), with `dimensions` and `user` when the client sent them.
"""

from __future__ import annotations

import array
import base64
import json
import sys
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import httpx2
import openai

from llm.parameters import OPTIONS, part_kind, takes, takes_part
from llm.providers.base import (
    AdapterEvent,
    Embedded,
    Params,
    connection_error,
    embedded,
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
    EmbeddingRequest,
    Finish,
    ImagePart,
    LLMError,
    ModelTarget,
    ProviderConfig,
    ReasoningDelta,
    ResponseFormat,
    TextDelta,
    TextPart,
    Tool,
    ToolCallDelta,
    ToolChoice,
    Usage,
)

DEFAULT_AZURE_API_VERSION = "2024-10-21"
DEFAULT_BASE_URLS = {"deepseek": "https://api.deepseek.com"}
# Servers that need no key (a local Ollama) still get one: the SDK refuses to start without.
_NO_KEY = "none"


def client_for(provider: ProviderConfig) -> openai.AsyncOpenAI:
    """An SDK client for a provider (shared: see shared_client); its own retries are off (the router
    retries)."""
    # The read timeout is a backstop: the router's first-token and idle timeouts fire first.
    read = max(provider.first_token_timeout, provider.idle_timeout) + 5
    timeout = openai.Timeout(read, connect=provider.connect_timeout)
    headers = dict(provider.extra_headers)
    if provider.kind == "azure_openai":
        return openai.AsyncAzureOpenAI(
            azure_endpoint=provider.base_url,
            api_key=provider.api_key or _NO_KEY,
            api_version=provider.api_version or DEFAULT_AZURE_API_VERSION,
            timeout=timeout,
            max_retries=0,
            default_headers=headers,
            http_client=openai.DefaultAsyncHttpxClient(verify=ssl_context()),
        )
    return openai.AsyncOpenAI(
        base_url=provider.base_url or DEFAULT_BASE_URLS.get(provider.kind) or "https://api.openai.com/v1",
        api_key=provider.api_key or _NO_KEY,
        timeout=timeout,
        max_retries=0,
        default_headers=headers,
        http_client=openai.DefaultAsyncHttpxClient(verify=ssl_context()),
    )


def request_body(target: ModelTarget, request: ChatRequest, params: Params) -> dict[str, Any]:
    """The chat-completions body for `request`, as it goes on the wire (without `stream`)."""
    kind = target.provider.kind
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages += [_message(kind, message) for message in request.messages]
    body: dict[str, Any] = {"model": target.upstream_name, "messages": messages}
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.max_tokens is not None:
        # OpenAI's reasoning models take only the newer name; the others still take both.
        key = "max_completion_tokens" if kind == "openai" else "max_tokens"
        body[key] = params.max_tokens
    if params.stop:
        body["stop"] = list(params.stop)
    if request.tools and takes(kind, "tools"):
        body["tools"] = [_tool(tool) for tool in request.tools]
    if request.tool_choice is not None and takes(kind, "tool_choice"):
        body["tool_choice"] = _tool_choice(request.tool_choice)
    if request.parallel_tool_calls is not None and takes(kind, "parallel_tool_calls"):
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format is not None and takes(kind, "response_format"):
        body["response_format"] = _response_format(kind, request.response_format)
    for name, value in request.options.items():
        if name in OPTIONS and value is not None and takes(kind, name):
            body[name] = value
    # The model's operator-set defaults, under what the request itself says.
    for name, value in params.extra.items():
        body.setdefault(name, value)
    return body


_PROVIDER_NAMES = {"deepseek": "DeepSeek"}


def _message(kind: str, message: ChatMessage) -> dict[str, Any]:
    if message.role == "assistant":
        text = message.text
        entry: dict[str, Any] = {
            "role": "assistant",
            "content": text if text or not message.tool_calls else None,
        }
        if message.tool_calls:
            entry["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ]
        return entry
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    if isinstance(message.content, str):
        return {"role": message.role, "content": message.content}
    return {"role": message.role, "content": [_part(kind, part) for part in message.content]}


def _part(kind: str, part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    what = part_kind(part)
    # DeepSeek's chat API reads text only: it has no vision model either.
    if not takes_part(kind, what) or kind == "deepseek":
        provider = _PROVIDER_NAMES.get(kind, "This provider")
        raise LLMError("upstream_bad_request", f"{provider} does not take {what} input.")
    if isinstance(part, ImagePart):
        image: dict[str, Any] = {"url": part.url}
        if part.detail:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    if isinstance(part, AudioPart):
        return {"type": "input_audio", "input_audio": {"data": part.data, "format": part.format}}
    if part.file_id:
        return {"type": "file", "file": {"file_id": part.file_id}}
    # OpenAI reads PDFs only; a document with no media type is most likely one.
    media_type = part.media_type or "application/pdf"
    document = {"file_data": f"data:{media_type};base64,{part.data}", "filename": part.filename or "document"}
    return {"type": "file", "file": document}


def _tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    if tool.parameters:
        function["parameters"] = dict(tool.parameters)
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "function":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _response_format(kind: str, response_format: ResponseFormat) -> dict[str, Any]:
    if response_format.type != "json_schema":
        return {"type": response_format.type}
    if kind == "deepseek":
        return {"type": "json_object"}  # DeepSeek has no schemas: any JSON object
    schema: dict[str, Any] = {"name": response_format.name or "response"}
    if response_format.description:
        schema["description"] = response_format.description
    if response_format.schema is not None:
        schema["schema"] = dict(response_format.schema)
    if response_format.strict is not None:
        schema["strict"] = response_format.strict
    return {"type": "json_schema", "json_schema": schema}


async def stream(
    target: ModelTarget, request: ChatRequest, params: Params
) -> AsyncGenerator[AdapterEvent, None]:
    usage: Usage | None = None
    # The finish reason of every choice seen so far (None until it comes).
    reasons: dict[int, str | None] = {}
    calls = _ToolCalls()
    body = request_body(target, request, params)
    try:
        client = shared_client(target.provider, client_for)
        # The rest of the body goes as it is, untouched by the SDK's typed transforms; `model`
        # stays named because the Azure client builds its deployment path from it.
        streaming = client.chat.completions.with_streaming_response.create(
            model=body.pop("model"),
            messages=body.pop("messages"),
            stream=True,
            stream_options={"include_usage": True},
            extra_body=body,
        )
        # Leaving early (cancelled) closes the response, and so this call's connection.
        async with streaming as response:
            async for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # blank lines, comments, `event:` names
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if chunk.get("error"):
                    raise stream_error(target, chunk["error"])
                if chunk.get("usage"):
                    usage = Usage(
                        input_tokens=chunk["usage"].get("prompt_tokens") or 0,
                        output_tokens=chunk["usage"].get("completion_tokens") or 0,
                    )
                # Azure opens with a chunk of no choices (its content filter's verdict).
                for choice in chunk.get("choices") or ():
                    index = choice.get("index") or 0
                    if index not in reasons:
                        reasons[index] = None
                    delta = choice.get("delta") or {}
                    # DeepSeek's field, or `reasoning` (OpenRouter, vLLM, Ollama).
                    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                    if reasoning and isinstance(reasoning, str):
                        yield ReasoningDelta(reasoning, index)
                    content = delta.get("content")
                    if content:
                        logprobs = choice.get("logprobs")
                        entries = logprobs.get("content") if logprobs else None
                        yield TextDelta(content, index, tuple(entries) if entries else ())
                    for fragment in delta.get("tool_calls") or ():
                        event = calls.fragment(index, fragment)
                        if event is not None:
                            yield event
                    if delta.get("function_call"):
                        event = calls.fragment(
                            index, {"index": "function_call", "function": delta["function_call"]}
                        )
                        if event is not None:
                            yield event
                    if choice.get("finish_reason"):
                        reasons[index] = choice["finish_reason"]
    except openai.APIError as exc:
        raise error_for(target, exc) from None
    except httpx2.TransportError as exc:
        raise connection_error(target, exc) from None
    except (ValueError, AttributeError, TypeError):
        # Not the chat-completions stream format: a server that only claims to be compatible.
        raise LLMError(
            "upstream_unavailable",
            f"{target.provider.name} ({target.upstream_name}) sent a stream this server cannot read.",
            retryable=True,
        ) from None
    if usage is not None:
        yield usage
    for index in sorted(reasons) or [0]:
        reason = finish_reason(reasons.get(index))
        if reason == "stop" and calls.made_by(index):
            # Some compatible servers end a reply that called tools with "stop".
            reason = "tool_calls"
        yield Finish(reason, index)


async def embed(target: ModelTarget, request: EmbeddingRequest) -> Embedded:
    inputs: Any = [item if isinstance(item, str) else list(item) for item in request.inputs]
    options: dict[str, Any] = {}
    if request.dimensions is not None:
        options["dimensions"] = request.dimensions
    if request.user:
        options["user"] = request.user
    try:
        client = shared_client(target.provider, client_for)
        # `model` names the Azure deployment too: the Azure client builds its path from it.
        response = await client.embeddings.create(
            model=target.upstream_name, input=inputs, encoding_format="float", **options
        )
    except openai.APIError as exc:
        raise error_for(target, exc) from None
    except httpx2.TransportError as exc:
        raise connection_error(target, exc) from None
    except (ValueError, AttributeError, TypeError):
        raise LLMError(
            "upstream_unavailable",
            f"{target.provider.name} ({target.upstream_name}) sent embeddings this server cannot read.",
            retryable=True,
        ) from None
    data = sorted(response.data or (), key=lambda item: item.index)
    result = embedded(target, request, [_floats(item.embedding) for item in data])
    usage = response.usage
    tokens = usage.prompt_tokens if usage is not None and usage.prompt_tokens is not None else None
    return Embedded(vectors=result.vectors, input_tokens=tokens)


def _floats(vector: Any) -> list[float]:
    """A vector as floats; some compatible servers send base64 (little-endian float32) whatever
    was asked. Anything else unreadable becomes an empty vector, which `embedded` refuses."""
    if not isinstance(vector, str):
        return list(vector) if isinstance(vector, list | tuple) else []
    try:
        values = array.array("f", base64.b64decode(vector, validate=True))
    except ValueError:  # not base64, or not a whole number of floats
        return []
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


class _ToolCalls:
    """The tool calls of a stream's choices, numbered 0, 1, ... per choice as they start.

    OpenAI numbers a reply's calls with `index` and sends `id` and `name` once, on a call's
    first fragment. Compatible servers stray from that: no `index` (each call then starts with
    its own `id`), an `id` and `name` on every fragment, no `id` at all. Whatever came, the
    deltas come out as OpenAI streams them, an id made up where the server gave none.
    """

    def __init__(self) -> None:
        self.numbers: dict[tuple[int, object], int] = {}  # (choice, the server's key) -> number
        self.named: set[tuple[int, int]] = set()
        self.count: dict[int, int] = {}  # calls per choice
        self.latest: dict[int, object] = {}  # the key of each choice's latest call

    def made_by(self, choice: int) -> bool:
        return self.count.get(choice, 0) > 0

    def fragment(self, choice: int, fragment: dict[str, Any]) -> ToolCallDelta | None:
        function = fragment.get("function") or {}
        call_id = fragment.get("id") or ""
        name = function.get("name") or ""
        arguments = function.get("arguments") or ""
        key: object = fragment.get("index")
        if key is None:
            key = call_id or self.latest.get(choice)
        number = self.numbers.get((choice, key)) if key is not None else None
        if number is None:
            number = self.count.get(choice, 0)
            self.count[choice] = number + 1
            key = key if key is not None else object()
            self.numbers[(choice, key)] = number
            self.latest[choice] = key
            if name:
                self.named.add((choice, number))
            return ToolCallDelta(
                number,
                id=call_id or f"call_{uuid.uuid4().hex[:24]}",
                name=name,
                arguments=arguments,
                choice=choice,
            )
        self.latest[choice] = key
        if name and (choice, number) not in self.named:
            self.named.add((choice, number))
            return ToolCallDelta(number, name=name, arguments=arguments, choice=choice)
        if not arguments:
            return None
        return ToolCallDelta(number, arguments=arguments, choice=choice)


def stream_error(target: ModelTarget, error: Any) -> LLMError:
    """An error event inside a stream that began well (the provider is overloaded, say)."""
    message = error.get("message") if isinstance(error, dict) else str(error)
    return mid_stream_error(target, str(message or ""))


def error_for(target: ModelTarget, exc: openai.APIError) -> LLMError:
    """The LLMError for an SDK exception; its message never holds the key."""
    if isinstance(exc, openai.APIStatusError):
        return status_error(
            target,
            exc.status_code,
            _upstream_message(exc),
            retry_after=retry_after_seconds(exc.response.headers),
        )
    if isinstance(exc, openai.APITimeoutError):
        return timeout_error(target, "the connection or a read took too long")
    if isinstance(exc, openai.APIConnectionError):
        return connection_error(target, exc.__cause__ or exc)
    # An error event inside the stream, or a reply the SDK could not read.
    return mid_stream_error(target, _upstream_message(exc))


def _upstream_message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            code = error.get("code")
            return f"{error['message']} ({code})" if code else str(error["message"])
    return exc.message
