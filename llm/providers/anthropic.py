"""Anthropic messages through the official `anthropic` SDK.

The system prompt goes in the top-level `system` field. Usage arrives in two parts:
input tokens in `message_start`, output tokens in `message_delta`. Sampling parameters
(temperature, top_p) are not sent: the current API refuses them for current models.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
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
from llm.types import ChatRequest, Finish, LLMError, ModelTarget, ProviderConfig, TextDelta, Usage

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


def request_body(target: ModelTarget, request: ChatRequest, params: Params) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": target.upstream_name,
        "messages": [{"role": message.role, "content": message.content} for message in request.messages],
        # Anthropic requires a limit; the model's own is the natural one.
        "max_tokens": params.max_tokens if params.max_tokens is not None else target.max_output_tokens,
    }
    if request.system:
        body["system"] = request.system
    # No temperature or top_p: the current Messages API refuses them for current models
    # ("temperature is deprecated for this model") and the SDK no longer takes them.
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    if params.extra:
        body["extra_body"] = dict(params.extra)
    return body


async def stream(
    target: ModelTarget, request: ChatRequest, params: Params
) -> AsyncGenerator[AdapterEvent, None]:
    input_tokens: int | None = None
    output_tokens: int | None = None
    reason: str | None = None
    try:
        client = shared_client(target.provider, client_for)
        events = await client.messages.create(**request_body(target, request, params), stream=True)
        async with events:  # leaving early (cancelled) closes this call's connection
            async for event in events:
                if event.type == "content_block_delta":
                    if event.delta.type == "text_delta" and event.delta.text:
                        yield TextDelta(event.delta.text)
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
