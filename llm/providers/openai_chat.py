"""OpenAI chat completions through the official `openai` SDK: OpenAI, Azure OpenAI, DeepSeek
and any OpenAI-compatible server (Ollama, vLLM, OpenRouter, ...).

Usage comes from the stream's last chunk (`stream_options.include_usage`). The system
prompt is the first message, with the role `system`.

The SDK makes the request (base URL, auth, headers, status errors) and hands back the
response stream; its lines are read here with `json.loads`. The SDK's own chunk objects
cost about 200 µs a chunk in CPU, which capped a server process at a few dozen
concurrent streams; reading the lines costs a tenth of that.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx2
import openai

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
from llm.types import ChatRequest, Finish, LLMError, ModelTarget, ProviderConfig, TextDelta, Usage

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
    messages: list[dict[str, str]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages += [{"role": message.role, "content": message.content} for message in request.messages]
    body: dict[str, Any] = {"model": target.upstream_name, "messages": messages}
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.max_tokens is not None:
        # OpenAI's reasoning models take only the newer name; the others still take both.
        key = "max_completion_tokens" if target.provider.kind == "openai" else "max_tokens"
        body[key] = params.max_tokens
    if params.stop:
        body["stop"] = list(params.stop)
    if params.extra:
        body["extra_body"] = dict(params.extra)
    return body


async def stream(
    target: ModelTarget, request: ChatRequest, params: Params
) -> AsyncGenerator[AdapterEvent, None]:
    usage: Usage | None = None
    reason: str | None = None
    try:
        client = shared_client(target.provider, client_for)
        streaming = client.chat.completions.with_streaming_response.create(
            **request_body(target, request, params), stream=True, stream_options={"include_usage": True}
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
                    if choice.get("index", 0) != 0:
                        continue
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        yield TextDelta(content)
                    if choice.get("finish_reason"):
                        reason = choice["finish_reason"]
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
    yield Finish(finish_reason(reason))


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
