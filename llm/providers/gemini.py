"""Gemini through the official `google-genai` SDK (not its retired predecessor).

The system prompt goes in `systemInstruction`; assistant turns have the role `model`.
Usage comes from the stream's `usageMetadata`; thinking tokens are billed as output.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx
from google import genai
from google.genai import errors, types

from llm.providers.base import (
    AdapterEvent,
    Params,
    connection_error,
    finish_reason,
    safe_message,
    ssl_context,
    status_error,
    timeout_error,
)
from llm.types import ChatRequest, Finish, LLMError, ModelTarget, ProviderConfig, TextDelta, Usage


def client_for(provider: ProviderConfig, http_client: httpx.AsyncClient) -> genai.Client:
    """An SDK client for one call, on our own HTTP client (so closing it closes the connection)."""
    read = max(provider.first_token_timeout, provider.idle_timeout) + 5
    options = types.HttpOptions(
        base_url=provider.base_url or None,
        headers=dict(provider.extra_headers) or None,
        timeout=int(read * 1000),
        # Given clients and TLS context: the SDK would otherwise load the CA bundle three times.
        httpx_async_client=http_client,
        httpx_client=httpx.Client(verify=ssl_context()),
        async_client_args={"ssl": ssl_context()},
    )
    # vertexai=False: never switch to Vertex AI because of a GOOGLE_GENAI_USE_VERTEXAI variable.
    return genai.Client(api_key=provider.api_key or "none", vertexai=False, http_options=options)


def request_config(target: ModelTarget, request: ChatRequest, params: Params) -> types.GenerateContentConfig:
    config: dict[str, Any] = {
        # Nexus sends no tools; without this the SDK logs a line per call about calling them.
        "automatic_function_calling": types.AutomaticFunctionCallingConfig(disable=True),
    }
    if request.system:
        config["system_instruction"] = request.system
    if params.temperature is not None:
        config["temperature"] = params.temperature
    if params.top_p is not None:
        config["top_p"] = params.top_p
    if params.max_tokens is not None:
        config["max_output_tokens"] = params.max_tokens
    if params.stop:
        config["stop_sequences"] = list(params.stop)
    try:
        return types.GenerateContentConfig(**config, **params.extra)
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        names = ", ".join(sorted(params.extra))
        raise LLMError(
            "upstream_bad_request",
            f"The default parameters of {target.name} ({names}) are not valid for Gemini: "
            f"{safe_message(str(exc), target.provider.api_key)}",
        ) from None


def request_contents(request: ChatRequest) -> list[types.Content]:
    return [
        types.Content(
            role="model" if message.role == "assistant" else "user", parts=[types.Part(text=message.content)]
        )
        for message in request.messages
    ]


async def stream(
    target: ModelTarget, request: ChatRequest, params: Params
) -> AsyncGenerator[AdapterEvent, None]:
    config = request_config(target, request, params)
    usage: Usage | None = None
    reason: str | None = None
    http_client = httpx.AsyncClient(verify=ssl_context())
    try:
        client = client_for(target.provider, http_client)
        chunks = await client.aio.models.generate_content_stream(
            model=target.upstream_name, contents=request_contents(request), config=config
        )
        async for chunk in chunks:
            for candidate in (chunk.candidates or [])[:1]:
                for part in (candidate.content.parts if candidate.content else None) or []:
                    if part.text and not part.thought:
                        yield TextDelta(part.text)
                if candidate.finish_reason:
                    reason = str(candidate.finish_reason.value)
            metadata = chunk.usage_metadata
            if metadata is not None and metadata.candidates_token_count is not None:
                usage = Usage(
                    input_tokens=metadata.prompt_token_count or 0,
                    output_tokens=metadata.candidates_token_count + (metadata.thoughts_token_count or 0),
                )
    except errors.APIError as exc:
        raise error_for(target, exc) from None
    except httpx.TimeoutException:
        raise timeout_error(target, "the connection or a read took too long") from None
    except httpx.TransportError as exc:
        raise connection_error(target, exc) from None
    finally:
        # Closes the connection too when the caller stopped early or was cancelled.
        await http_client.aclose()
    if usage is not None:
        yield usage
    yield Finish(finish_reason(reason))


def error_for(target: ModelTarget, exc: errors.APIError) -> LLMError:
    """The LLMError for an SDK exception; its message never holds the key."""
    message = str(exc.message or exc.status or "")
    status = int(exc.code) if isinstance(exc.code, int) else 500
    # Gemini answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
    if status == 400 and ("API_KEY_INVALID" in str(exc.details) or "API key not valid" in message):
        status = 401
    return status_error(target, status, message)
