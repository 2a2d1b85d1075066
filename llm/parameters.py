"""Which of OpenAI's Chat Completions parameters each provider kind takes, and how.

`forwarded`: sent as it is. `mapped`: translated to the provider's own parameter (the note
says to what). `unsupported`: the provider kind has nothing like it; a request that sets it
(to anything but its neutral value) gets it dropped and named in the response's
`X-Nexus-Dropped-Params` header, or refused with a 400 when the model's `drop_params` is off.

The adapters (llm/providers) implement exactly this table; the README shows it, made by
`parameters_markdown()`. Features a model may lack whatever its kind (images, tools,
structured output, reasoning) are its capability flags, checked by `capability_gaps`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

from llm.types import AudioPart, Capability, ChatRequest, ContentPart, FilePart, ImagePart, ModelTarget

How = Literal["forwarded", "mapped", "unsupported"]
Entry = tuple[How, str]

# Every parameter the gateway takes beside `model`, `messages`, `stream` and `stream_options`.
PARAMETERS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "stop",
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "verbosity",
    "user",
    "metadata",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "service_tier",
    "store",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
)
# Parameters kept in ChatRequest.options (the rest have fields of their own).
OPTIONS = frozenset(PARAMETERS) - {
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
}
# Values that change nothing: a kind that cannot honour the parameter still takes these.
NEUTRAL: Mapping[str, tuple[Any, ...]] = {
    "n": (1,),
    "logprobs": (False,),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "store": (False,),
    "parallel_tool_calls": (True,),
    "modalities": (["text"],),
}

_FORWARDED: Entry = ("forwarded", "")
_OPENAI: dict[str, Entry] = {name: _FORWARDED for name in PARAMETERS}
_OPENAI["max_tokens"] = ("mapped", "`max_completion_tokens` for OpenAI, `max_tokens` for the others")
# OpenAI's own API has no top_k (it refuses the field); servers that only speak its protocol
# (vLLM, Ollama, LM Studio, llama.cpp) sample with it.
_OPENAI["top_k"] = ("unsupported", "")
_COMPATIBLE: dict[str, Entry] = {**_OPENAI, "top_k": _FORWARDED}

_DEEPSEEK: dict[str, Entry] = {name: ("unsupported", "") for name in PARAMETERS}
_DEEPSEEK.update(
    {
        name: _FORWARDED
        for name in (
            "temperature",
            "top_p",
            "max_tokens",
            "stop",
            "presence_penalty",
            "frequency_penalty",
            "logprobs",
            "top_logprobs",
            "tools",
            "tool_choice",
            "response_format",
        )
    }
)
_DEEPSEEK["response_format"] = ("forwarded", "`json_schema` becomes `json_object`: DeepSeek has no schemas")

_ANTHROPIC: dict[str, Entry] = {name: ("unsupported", "") for name in PARAMETERS}
_ANTHROPIC.update(
    {
        "temperature": ("forwarded", ""),
        "top_p": ("forwarded", ""),
        "top_k": ("forwarded", ""),
        "max_tokens": ("forwarded", "the model's maximum output when the client names none"),
        "stop": ("mapped", "`stop_sequences`"),
        "tools": ("mapped", "`tools` with `input_schema`"),
        "tool_choice": ("mapped", "`tool_choice` auto / none / any / tool"),
        "parallel_tool_calls": ("mapped", "`false` sets `disable_parallel_tool_use`"),
        "response_format": (
            "mapped",
            "`json_schema` to `output_config.format`; `json_object` to an instruction in the system prompt",
        ),
        "reasoning_effort": (
            "mapped",
            "`output_config.effort` (`minimal` is `low`; `none` turns thinking off)",
        ),
        "user": ("mapped", "`metadata.user_id`"),
    }
)

_GEMINI: dict[str, Entry] = {name: ("unsupported", "") for name in PARAMETERS}
_GEMINI.update(
    {
        "temperature": ("forwarded", ""),
        "top_p": ("forwarded", ""),
        "top_k": ("forwarded", ""),
        "max_tokens": ("mapped", "`max_output_tokens`"),
        "stop": ("mapped", "`stop_sequences`"),
        "n": ("mapped", "`candidate_count`"),
        "seed": ("forwarded", ""),
        "presence_penalty": ("forwarded", ""),
        "frequency_penalty": ("forwarded", ""),
        "logprobs": ("mapped", "`response_logprobs`"),
        "top_logprobs": ("mapped", "`logprobs`"),
        "tools": ("mapped", "`function_declarations`"),
        "tool_choice": ("mapped", "`tool_config.function_calling_config` AUTO / NONE / ANY"),
        "response_format": ("mapped", "`response_mime_type` and `response_json_schema`"),
        "reasoning_effort": (
            "mapped",
            "`thinking_config.thinking_level` low or high (`none`: a thinking budget of 0)",
        ),
    }
)

_DEMO: dict[str, Entry] = {name: ("unsupported", "") for name in PARAMETERS}
_DEMO["max_tokens"] = ("forwarded", "")

# Provider kinds sharing a table are listed together in the README.
TABLES: tuple[tuple[tuple[str, ...], dict[str, Entry]], ...] = (
    (("openai", "azure_openai"), _OPENAI),
    (("openai_compatible",), _COMPATIBLE),
    (("deepseek",), _DEEPSEEK),
    (("anthropic",), _ANTHROPIC),
    (("gemini",), _GEMINI),
    (("demo",), _DEMO),
)
_BY_KIND = {kind: table for kinds, table in TABLES for kind in kinds}

# Parameters that need a capability of the model, whatever its kind.
_NEEDS: Mapping[str, Capability] = {"reasoning_effort": "reasoning"}


# Content parts beyond text and images, by the provider kinds that read them.
_PARTS: Mapping[str, frozenset[str]] = {
    "audio": frozenset({"openai", "azure_openai", "openai_compatible", "gemini"}),
    "file": frozenset({"openai", "azure_openai", "openai_compatible", "anthropic", "gemini"}),
}


def part_kind(part: ContentPart) -> str:
    """text, image, audio or file."""
    if isinstance(part, ImagePart):
        return "image"
    if isinstance(part, AudioPart):
        return "audio"
    if isinstance(part, FilePart):
        return "file"
    return "text"


def takes_part(kind: str, part: str) -> bool:
    """Whether provider kind `kind` reads content parts of this kind (images: see capabilities)."""
    readers = _PARTS.get(part)
    return readers is None or kind in readers


def support(kind: str, name: str) -> Entry:
    """How provider kind `kind` takes parameter `name`."""
    return _BY_KIND.get(kind, _OPENAI).get(name, ("unsupported", ""))


def takes(kind: str, name: str) -> bool:
    return support(kind, name)[0] != "unsupported"


def _set(request: ChatRequest, name: str) -> bool:
    """Whether the request sets `name` to a value that changes the reply."""
    if name in OPTIONS:
        value = request.options.get(name)
    elif name == "stop":
        value = request.stop or None
    elif name == "tools":
        value = request.tools or None
    elif name == "max_tokens":
        return False  # always honoured: the router cuts a reply that runs past it
    else:
        value = getattr(request, name)
    if value is None:
        return False
    return value not in NEUTRAL.get(name, ())


def unsupported_parameters(target: ModelTarget, request: ChatRequest) -> list[str]:
    """What the request sets that the target cannot honour, by OpenAI's names."""
    kind = target.provider.kind
    names = []
    for name in PARAMETERS:
        if not _set(request, name) or name in ("tools", "tool_choice", "response_format"):
            continue  # tools and formats are capabilities: refused, never dropped
        needs = _NEEDS.get(name)
        if not takes(kind, name) or (needs is not None and needs not in target.capabilities):
            names.append(name)
    return names


def without(request: ChatRequest, names: list[str]) -> ChatRequest:
    """The request with these parameters left out."""
    if not names:
        return request
    fields: dict[str, Any] = {}
    for name in names:
        if name in OPTIONS:
            continue
        fields[name] = () if name == "stop" else None
    options = {key: value for key, value in request.options.items() if key not in names}
    return replace(request, options=options, **fields)


def capability_gaps(target: ModelTarget, needs: Mapping[Capability, str]) -> list[tuple[Capability, str]]:
    """The capabilities a request needs (each with the param that needs it) that `target` lacks."""
    return [
        (capability, param) for capability, param in needs.items() if capability not in target.capabilities
    ]


def parameters_markdown() -> str:
    """The table of the README: a row per parameter, a column per group of provider kinds."""
    header = (
        "| parameter | " + " | ".join(", ".join(f"`{kind}`" for kind in kinds) for kinds, _ in TABLES) + " |"
    )
    lines = [header, "| --- |" + " --- |" * len(TABLES)]
    for name in PARAMETERS:
        cells = []
        for _, table in TABLES:
            how, note = table.get(name, ("unsupported", ""))
            cells.append(f"{how}: {note}" if note else how)
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
