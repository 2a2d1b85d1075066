"""What every adapter shares: the call parameters, the event types, and error mapping.

An adapter is an async generator `stream(target, request, params)` that opens one upstream
stream and yields TextDelta, ReasoningDelta and ToolCallDelta as they come, then at most one
Usage, then a Finish per choice (one, unless the request asked for `n`). It raises LLMError
for every failure, never an SDK exception, and closes its HTTP client (and so the
connection) however it ends: exhausted, failed, closed early or cancelled.

A protocol with an embeddings API has `embed(target, request)` too: one call that answers
`Embedded`, a vector per input in their order, and raises LLMError just the same.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx

from llm.types import (
    ChatRequest,
    EmbeddingRequest,
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


@dataclass(frozen=True, slots=True)
class Embedded:
    """What an adapter's `embed` answers: a vector per input, in the inputs' order, and the
    input tokens the provider counted (None when it did not say)."""

    vectors: tuple[tuple[float, ...], ...]
    input_tokens: int | None = None


class EmbedFunction(Protocol):
    def __call__(self, target: ModelTarget, request: EmbeddingRequest) -> Awaitable[Embedded]: ...


def embedded(target: ModelTarget, request: EmbeddingRequest, vectors: Sequence[Sequence[float]]) -> Embedded:
    """The vectors a provider sent, once they are what was asked: one per input, all the same
    length (a server that only claims to be compatible may send fewer, or none)."""
    lengths = {len(vector) for vector in vectors}
    if len(vectors) != len(request.inputs) or len(lengths) != 1 or 0 in lengths:
        raise LLMError(
            "upstream_unavailable",
            f"The provider of {target.name} sent embeddings this server cannot read.",
            detail=f"{target.provider.name} ({target.upstream_name}) sent {len(vectors)} vectors "
            f"of lengths {sorted(lengths)} for {len(request.inputs)} inputs",
            retryable=True,
        )
    return Embedded(vectors=tuple(tuple(vector) for vector in vectors))


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

# Credentials in the shapes provider and SDK texts quote them, each with what replaces it.
_CREDENTIALS = (
    # user:password@ (or a token alone) in any URL: postgres://u:p@h, https://user:pass@host.
    (re.compile(r"\b([a-z][a-z0-9+.-]*://)[^\s/?#@:]*(?::[^\s@]*)?@", re.IGNORECASE), r"\1[redacted]@"),
    (re.compile(r"\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), r"\1\2[redacted]"),
    # OpenAI's and Anthropic's sk-/sk-ant-/sk-proj-, Nexus's own nx-, Google's AIza..., JWTs,
    # AWS access key ids, GitHub and Slack tokens.
    (re.compile(r"\b(?:sk|rk|pk|nx)-[A-Za-z0-9_-]{8,}"), "[redacted]"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), "[redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "[redacted]"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "[redacted]"),
    (re.compile(r"\b(?:gh[pousr]_|github_pat_|xox[abprs]-)[A-Za-z0-9_-]{10,}"), "[redacted]"),
    # key=..., "api_key": "...", password: ..., in query strings, JSON and headers.
    (
        re.compile(
            r"""((?:api[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token|secret|password|passwd"""
            r"""|x-api-key|x-goog-api-key|api-key|key|token)["']?\s*[=:]\s*["']?)[^\s"'&,;}]+""",
            re.IGNORECASE,
        ),
        r"\1[redacted]",
    ),
)


def redact(text: str, secret: str = "") -> str:
    """`text` with the key (and any long fragment of it) and any credential-like string blotted
    out: URLs with a user or password, Bearer tokens, provider keys, JWTs, `key=...` pairs."""
    if secret:
        text = text.replace(secret, "[redacted]")
        if len(secret) >= 16:
            for fragment in (secret[:12], secret[-8:]):
                text = text.replace(fragment, "[redacted]")
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return text


def safe_message(text: str, secret: str) -> str:
    """A provider's text as it may be logged: redacted, on one line, at most 300 characters."""
    text = " ".join(redact(str(text), secret).split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def status_error(
    target: ModelTarget, status: int, upstream_message: str, *, retry_after: float | None = None
) -> LLMError:
    """The LLMError for an HTTP error status from the provider: Nexus's words for the client,
    the provider's (redacted) for the log."""
    provider = target.provider
    detail = f"{provider.name} ({target.upstream_name}) HTTP {status}: " + safe_message(
        upstream_message, provider.api_key
    )
    model = target.name
    if status in (401, 403):
        return LLMError(
            "upstream_auth",
            f"The provider of {model} refused Nexus's credentials (HTTP {status}); an operator must fix it.",
            detail=detail,
        )
    if status == 429:
        return LLMError(
            "upstream_rate_limited",
            f"The provider of {model} is rate limiting requests (HTTP 429); try again shortly.",
            detail=detail,
            retryable=True,
            retry_after=retry_after,
        )
    if status in (408, 504):
        return LLMError(
            "upstream_timeout",
            f"The provider of {model} timed out (HTTP {status}); try again.",
            detail=detail,
            retryable=True,
        )
    if status >= 500:
        return LLMError(
            "upstream_unavailable",
            f"The provider of {model} failed (HTTP {status}); try again shortly.",
            detail=detail,
            retryable=True,
        )
    if _CONTEXT_LENGTH.search(upstream_message):
        return LLMError(
            "context_length",
            f"The conversation is too long for {model}'s context window: shorten it or start a new one.",
            detail=detail,
        )
    if status == 404:
        return LLMError(
            "upstream_bad_request",
            f"The provider of {model} does not serve it (HTTP 404); an operator has to check the model.",
            detail=detail,
        )
    return LLMError(
        "upstream_bad_request", f"The provider of {model} refused the request (HTTP {status}).", detail=detail
    )


def connection_error(target: ModelTarget, exc: BaseException) -> LLMError:
    provider = target.provider
    detail = f"{provider.name} ({target.upstream_name}): " + safe_message(
        str(exc) or type(exc).__name__, provider.api_key
    )
    return LLMError(
        "upstream_unavailable",
        f"Nexus could not reach the provider of {target.name}; try again shortly.",
        detail=detail,
        retryable=True,
    )


def timeout_error(target: ModelTarget, what: str, *, retryable: bool = True) -> LLMError:
    """A timeout; the SDK's own (connecting, reading) are retried, the router's are not.
    `what` is Nexus's own words (which wait ran out), so it is shown."""
    return LLMError(
        "upstream_timeout",
        f"The provider of {target.name} timed out: {what}.",
        detail=f"{target.provider.name} ({target.upstream_name}) timed out: {what}",
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
        f"The provider of {target.name} failed in the middle of the reply.",
        detail=f"{target.provider.name} ({target.upstream_name}) failed mid-stream: {detail}",
        retryable=True,
    )
