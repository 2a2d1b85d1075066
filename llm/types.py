"""The vocabulary between the llm app and its callers.

A caller resolves a model name to a `Route` (llm.selectors.route_get, which reads the
database once), builds a `ChatRequest`, and iterates llm.services.stream_chat(route, request):
an async stream of `Served`, `TextDelta`..., `Usage`, `Finish` that needs no database
connection. Provider failures raise `LLMError` with a code; nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One normalized request. `system` is the system prompt; `messages` hold no system turns."""

    messages: tuple[ChatMessage, ...]
    system: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """A snapshot of a Provider row, its API key decrypted (never shown in repr)."""

    id: int
    name: str
    kind: str
    base_url: str
    api_key: str = field(repr=False)
    api_version: str = ""
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    connect_timeout: float = 10.0
    first_token_timeout: float = 60.0
    idle_timeout: float = 60.0
    total_timeout: float = 600.0
    max_retries: int = 2


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """A snapshot of a Model row with its provider: everything needed to call and price it."""

    id: int
    name: str
    upstream_name: str
    provider: ProviderConfig
    context_window: int
    max_output_tokens: int
    input_price_per_million: Decimal
    output_price_per_million: Decimal
    default_params: Mapping[str, object] = field(default_factory=dict)
    cache_enabled: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """A model and its fallbacks, in the order they are tried."""

    primary: ModelTarget
    fallbacks: tuple[ModelTarget, ...] = ()

    @property
    def targets(self) -> tuple[ModelTarget, ...]:
        return (self.primary, *self.fallbacks)


# --- Stream events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Served:
    """First event of a stream: which model answers (a fallback, maybe) and whether from cache."""

    target: ModelTarget
    cached: bool = False
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str  # "stop", "length", "content_filter", ...


StreamEvent = Served | TextDelta | Usage | Finish

LLMErrorCode = Literal[
    "upstream_auth",
    "upstream_rate_limited",
    "upstream_unavailable",
    "upstream_timeout",
    "upstream_bad_request",
    "context_length",
    "upstream_error",
]


class LLMError(Exception):
    """A provider failure, with a code and a message safe to show (it never holds a key)."""

    def __init__(
        self, code: LLMErrorCode, message: str, *, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code: LLMErrorCode = code
        self.message = message
        self.retryable = retryable
        # Seconds the provider asked to wait before trying again (429's Retry-After), if it said.
        self.retry_after = retry_after

    @property
    def status_code(self) -> int:
        """The HTTP status a surface answers with when this happens before streaming."""
        return {
            "upstream_timeout": 504,
            "upstream_bad_request": 400,
            "context_length": 400,
        }.get(self.code, 502)


class UnknownModel(LookupError):
    """The model name is not in the catalog, or it (or its provider) is disabled."""

    def __init__(self, name: str) -> None:
        super().__init__(f"The model {name!r} does not exist or is not enabled.")
        self.name = name
