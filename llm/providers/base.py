"""What every adapter shares: the call parameters, the event types, and error mapping.

An adapter is an async generator `stream(target, request, params)` that opens one upstream
stream and yields TextDelta, ReasoningDelta and ToolCallDelta as they come, then at most one
Usage, then a Finish per choice (one, unless the request asked for `n`). It raises LLMError
for every failure, never an SDK exception, and closes its HTTP client (and so the
connection) however it ends: exhausted, failed, closed early or cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx

from llm.types import (
    ChatRequest,
    Finish,
    LLMError,
    ModelTarget,
    ProviderConfig,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)

AdapterEvent = TextDelta | ReasoningDelta | ToolCallDelta | Usage | Finish

# Parameters the request itself carries; everything else in Model.default_params goes to
# the provider as it is (OpenAI's `presence_penalty`, Anthropic's `top_k`, ...).
_NORMALIZED = ("temperature", "top_p", "max_tokens", "stop")


@dataclass(frozen=True, slots=True)
class Params:
    """Sampling parameters: the model's defaults, overridden by the request's."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def merge(cls, target: ModelTarget, request: ChatRequest) -> Params:
        defaults = dict(target.default_params or {})
        temperature, top_p, max_tokens = request.temperature, request.top_p, request.max_tokens
        if max_tokens is None and (default_max := _number(defaults.get("max_tokens"))) is not None:
            max_tokens = int(default_max)
        return cls(
            temperature=temperature if temperature is not None else _number(defaults.get("temperature")),
            top_p=top_p if top_p is not None else _number(defaults.get("top_p")),
            max_tokens=None if max_tokens is None else min(max_tokens, target.max_output_tokens),
            stop=request.stop or _strings(defaults.get("stop")),
            extra={key: value for key, value in defaults.items() if key not in _NORMALIZED},
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "extra": dict(self.extra),
        }


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value)
    return ()


class StreamFunction(Protocol):
    def __call__(
        self, target: ModelTarget, request: ChatRequest, params: Params
    ) -> AsyncGenerator[AdapterEvent, None]: ...


_MAX_CLIENTS_PER_LOOP = 64
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OrderedDict[Hashable, Any]] = (
    weakref.WeakKeyDictionary()
)
Client = TypeVar("Client")


def shared_client(provider: ProviderConfig, make: Callable[[ProviderConfig], Client]) -> Client:
    """One SDK client per provider configuration and event loop, so that calls reuse the
    client's connections instead of opening (and TLS-handshaking) one each.

    A call's own connection is still closed when the call is cancelled: the adapters close
    the response stream, which drops its connection rather than returning it to the pool.
    """
    clients = _clients.setdefault(asyncio.get_running_loop(), OrderedDict())
    key = (
        make,
        provider.id,
        provider.kind,
        provider.base_url,
        provider.api_key,
        provider.api_version,
        tuple(sorted(provider.extra_headers.items())),
        provider.connect_timeout,
        provider.first_token_timeout,
        provider.idle_timeout,
    )
    client = clients.get(key)
    if client is None:
        client = clients[key] = make(provider)
        if len(clients) > _MAX_CLIENTS_PER_LOOP:
            _, evicted = clients.popitem(last=False)
            close = getattr(evicted, "close", None)
            if close is not None:
                asyncio.get_running_loop().create_task(close())
    else:
        clients.move_to_end(key)
    return client


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle costs ~20ms, a client ~1ms."""
    return httpx.create_ssl_context()


# --- Errors ----------------------------------------------------------------------------

_CONTEXT_LENGTH = re.compile(
    r"context[_ ]length|maximum context|context window|prompt is too long|too many (input )?tokens"
    r"|exceeds the maximum number of tokens|input token count",
    re.IGNORECASE,
)
_MESSAGE_LIMIT = 300


def redact(text: str, secret: str) -> str:
    """`text` with the key, and any long fragment of it, blotted out."""
    if not secret:
        return text
    text = text.replace(secret, "[redacted]")
    if len(secret) >= 16:
        for fragment in (secret[:12], secret[-8:]):
            text = text.replace(fragment, "[redacted]")
    return text


def safe_message(text: str, secret: str) -> str:
    text = " ".join(redact(str(text), secret).split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def status_error(
    target: ModelTarget, status: int, upstream_message: str, *, retry_after: float | None = None
) -> LLMError:
    """The LLMError for an HTTP error status from the provider."""
    provider = target.provider
    detail = safe_message(upstream_message, provider.api_key)
    where = f"{provider.name} ({target.upstream_name})"
    if status in (401, 403):
        # Providers echo part of a rejected key; the message says nothing of it.
        error = LLMError("upstream_auth", f"{where} rejected the API key or its permissions (HTTP {status}).")
    elif status == 429:
        error = LLMError(
            "upstream_rate_limited",
            f"{where} is rate limiting requests (HTTP 429): {detail}",
            retryable=True,
            retry_after=retry_after,
        )
    elif status in (408, 504):
        error = LLMError("upstream_timeout", f"{where} timed out (HTTP {status}): {detail}", retryable=True)
    elif status >= 500:
        error = LLMError("upstream_unavailable", f"{where} failed (HTTP {status}): {detail}", retryable=True)
    elif _CONTEXT_LENGTH.search(upstream_message):
        error = LLMError("context_length", f"The conversation is too long for {target.name}: {detail}")
    elif status == 404:
        error = LLMError("upstream_bad_request", f"{where} does not know this model (HTTP 404): {detail}")
    else:
        error = LLMError("upstream_bad_request", f"{where} refused the request (HTTP {status}): {detail}")
    return error


def connection_error(target: ModelTarget, exc: BaseException) -> LLMError:
    provider = target.provider
    detail = safe_message(str(exc) or type(exc).__name__, provider.api_key)
    return LLMError(
        "upstream_unavailable",
        f"Could not reach {provider.name} ({target.upstream_name}): {detail}",
        retryable=True,
    )


def timeout_error(target: ModelTarget, what: str, *, retryable: bool = True) -> LLMError:
    """A timeout; the SDK's own (connecting, reading) are retried, the router's are not."""
    return LLMError(
        "upstream_timeout",
        f"{target.provider.name} ({target.upstream_name}) timed out: {what}.",
        retryable=retryable,
    )


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """A provider's Retry-After (or retry-after-ms), in seconds, when it sends one."""
    if not headers:
        return None
    try:
        if milliseconds := headers.get("retry-after-ms"):
            return float(milliseconds) / 1000
        if seconds := headers.get("retry-after"):
            return float(seconds)
    except ValueError:
        return None
    return None


def finish_reason(raw: str | None) -> str:
    """Providers' finish reasons in OpenAI's words: stop, length, content_filter, tool_calls."""
    if not raw:
        return "stop"
    return _FINISH_REASONS.get(raw.lower(), raw.lower())


_FINISH_REASONS = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "finish_reason_unspecified": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "content_filter": "content_filter",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "refusal": "content_filter",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
}


def mid_stream_error(target: ModelTarget, message: str) -> LLMError:
    """An error inside a stream that began well (an error event, a reply it cannot read)."""
    detail = safe_message(message or "an error event", target.provider.api_key)
    return LLMError(
        "upstream_unavailable",
        f"{target.provider.name} ({target.upstream_name}) failed mid-stream: {detail}",
        retryable=True,
    )
