"""The vocabulary between the llm app and its callers.

A caller resolves a model name to a `Route` (llm.selectors.route_get, which reads the
database once), builds a `ChatRequest`, and iterates llm.services.stream_chat(route, request):
an async stream of `Served`; then `TextDelta`, `ReasoningDelta` and `ToolCallDelta` as they
come; then one `Usage` and a `Finish` per choice, that needs no database connection.
An embedding model's route takes an `EmbeddingRequest` instead, through
llm.services.embed(route, request), which answers one `EmbeddingResult`.
Provider failures raise `LLMError` with a code; nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]

# What a model can do beyond text; a request that needs one the model lacks is refused.
Capability = Literal["vision", "tools", "structured_output", "reasoning"]
CAPABILITIES: tuple[Capability, ...] = ("vision", "tools", "structured_output", "reasoning")


# --- Content --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image by URL: `https://...`, or inline as `data:<media type>;base64,<data>`."""

    url: str
    detail: str = ""  # OpenAI's "auto", "low" or "high"; the other kinds have no such knob

    @property
    def inline(self) -> bool:
        return self.url.startswith("data:")

    @property
    def media_type(self) -> str:
        """The data URL's media type ("image/png"); empty for a remote image."""
        if not self.inline:
            return ""
        return self.url[5:].split(";", 1)[0].split(",", 1)[0]

    @property
    def data(self) -> str:
        """The data URL's base64 payload; empty for a remote image."""
        return self.url.split(",", 1)[1] if self.inline and "," in self.url else ""


@dataclass(frozen=True, slots=True)
class AudioPart:
    """Inline audio input (OpenAI's `input_audio`): base64 data and its format."""

    data: str
    format: str  # "wav", "mp3"


@dataclass(frozen=True, slots=True)
class FilePart:
    """A document (a PDF, say): inline as base64 `data` with its media type, or a provider's file id."""

    data: str = ""
    media_type: str = ""
    filename: str = ""
    file_id: str = ""


ContentPart = TextPart | ImagePart | AudioPart | FilePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asked for: the function's name and its arguments as the JSON text it wrote."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the conversation.

    `content` is plain text or a tuple of parts. An assistant message may carry `tool_calls`;
    a `tool` message answers the call `tool_call_id` (of the function `name`) with its content.
    A `system` message here is one that stood after the conversation began: the leading
    system prompt is ChatRequest.system.
    """

    role: Role
    content: str | tuple[ContentPart, ...] = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    name: str = ""

    @property
    def parts(self) -> tuple[ContentPart, ...]:
        if isinstance(self.content, str):
            return (TextPart(self.content),) if self.content else ()
        return self.content

    @property
    def text(self) -> str:
        """The text of the message, its text parts joined by newlines."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if isinstance(part, TextPart))


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; `parameters` is its arguments' JSON schema."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """auto (the model decides), none (no calls), required (at least one), or function (`name`)."""

    mode: Literal["auto", "none", "required", "function"]
    name: str = ""


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """What the reply must be: text, any JSON object, or JSON that fits `schema`."""

    type: Literal["text", "json_object", "json_schema"]
    name: str = ""
    schema: Mapping[str, Any] | None = None
    strict: bool | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One normalized request.

    `system` is the leading system prompt; a system message that came later stays in
    `messages` where it stood. `options` holds the rest of OpenAI's parameters by their
    OpenAI names (`seed`, `presence_penalty`, `reasoning_effort`, ...): each adapter forwards
    or maps those its provider kind takes (llm.parameters says which).
    """

    messages: tuple[ChatMessage, ...]
    system: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def choices(self) -> int:
        """How many alternative replies were asked for (`n`)."""
        n = self.options.get("n")
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


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
    capabilities: frozenset[Capability] = frozenset(CAPABILITIES)
    # A parameter its provider kind cannot honour: dropped (and named to the client) or refused.
    drop_params: bool = True
    # "chat" or "embedding" (llm.models.ModelKind): a model is called on its kind's surfaces only.
    kind: str = "chat"


@dataclass(frozen=True, slots=True)
class Route:
    """A model and its fallbacks, in the order they are tried."""

    primary: ModelTarget
    fallbacks: tuple[ModelTarget, ...] = ()

    @property
    def targets(self) -> tuple[ModelTarget, ...]:
        return (self.primary, *self.fallbacks)


# --- Embeddings ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """Texts to embed, or inputs already tokenized (OpenAI's token arrays), one vector each.

    `dimensions` asks for shorter vectors where the model can give them; `user` is the end
    user's id, passed on where the provider takes one.
    """

    inputs: tuple[str | tuple[int, ...], ...]
    dimensions: int | None = None
    user: str = ""

    @property
    def tokenized(self) -> bool:
        return any(not isinstance(item, str) for item in self.inputs)


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """The vectors, in the inputs' order; the input tokens (the provider's count unless
    `estimated`); the model that answered (a fallback, maybe) and after how many attempts."""

    vectors: tuple[tuple[float, ...], ...]
    input_tokens: int
    target: ModelTarget
    estimated: bool = False
    attempts: int = 1


# --- Stream events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Served:
    """First event of a stream: which model answers (a fallback, maybe) and whether from cache."""

    target: ModelTarget
    cached: bool = False
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Text of the reply; `choice` is which of `n` replies; `logprobs` OpenAI's entries for it."""

    text: str
    choice: int = 0
    logprobs: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """The model's reasoning (thinking) as it streams, before or between the reply's text."""

    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of the tool call number `index` of the reply, as OpenAI streams them: the
    first fragment of a call brings its `id` and `name`, the rest append to `arguments`."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str  # "stop", "length", "tool_calls", "content_filter", ...
    choice: int = 0


StreamEvent = Served | TextDelta | ReasoningDelta | ToolCallDelta | Usage | Finish

LLMErrorCode = Literal[
    "upstream_auth",
    "upstream_rate_limited",
    "upstream_unavailable",
    "upstream_timeout",
    "upstream_bad_request",
    "context_length",
    "upstream_error",
]


# What a client is told for each code when nothing more specific (and Nexus's own) is known.
LLM_ERROR_MESSAGES: dict[str, str] = {
    "upstream_auth": "The model's provider refused Nexus's credentials; an operator has to fix them.",
    "upstream_rate_limited": "The model's provider is rate limiting requests; try again shortly.",
    "upstream_unavailable": "The model's provider is unavailable right now; try again shortly.",
    "upstream_timeout": "The model's provider took too long to answer; try again.",
    "upstream_bad_request": "The model's provider refused this request.",
    "context_length": "The conversation is too long for this model's context window.",
    "upstream_error": "The reply failed unexpectedly.",
}


class LLMError(Exception):
    """A provider failure: a code, Nexus's own `message` for the client, and the provider's
    `detail` for the log only.

    The provider's text never goes into `message`: it can quote keys, connection strings or
    internal hosts, in shapes no redaction foresees. `detail` is redacted as well as Nexus
    can (llm.providers.base.redact) but is still for operators, not clients.
    """

    def __init__(
        self,
        code: LLMErrorCode,
        message: str | None = None,
        *,
        detail: str = "",
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        message = message or LLM_ERROR_MESSAGES.get(code, LLM_ERROR_MESSAGES["upstream_error"])
        super().__init__(message)
        self.code: LLMErrorCode = code
        self.message = message
        self.detail = detail
        self.retryable = retryable
        # Seconds the provider asked to wait before trying again (429's Retry-After), if it said.
        self.retry_after = retry_after

    @property
    def status_code(self) -> int:
        """The HTTP status a surface answers with when this happens before streaming."""
        return {
            "upstream_rate_limited": 429,
            "upstream_timeout": 504,
            "upstream_bad_request": 400,
            "context_length": 400,
        }.get(self.code, 502)


class UnknownModel(LookupError):
    """The model name is not in the catalog, or it (or its provider) is disabled."""

    def __init__(self, name: str) -> None:
        super().__init__(f"The model {name!r} does not exist or is not enabled.")
        self.name = name
