"""One adapter per wire protocol; `adapter_for(kind)` picks the one a provider kind speaks,
`embedder_for(kind)` its embeddings call.

Adapters are imported on first use, so a command that never calls Gemini never loads its SDK;
a server imports them all before it serves (`adapters_preload`).
"""

from __future__ import annotations

import importlib

from llm.providers.base import EmbedFunction, StreamFunction
from llm.types import LLMError

# Provider kind -> the module of its wire protocol.
PROTOCOLS = {
    "openai": "openai_chat",
    "azure_openai": "openai_chat",
    "deepseek": "openai_chat",
    "openai_compatible": "openai_chat",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "demo": "demo",
}


def adapters_preload() -> None:
    """Imports every adapter, and so its SDK. A server calls it at start: importing an SDK
    takes a second or more, and at a process's first call it would happen on the event loop,
    holding up every stream of the process meanwhile."""
    for module in sorted(set(PROTOCOLS.values())):
        importlib.import_module(f"llm.providers.{module}")


def adapter_for(kind: str) -> StreamFunction:
    try:
        module = PROTOCOLS[kind]
    except KeyError:
        raise ValueError(f"No adapter speaks the provider kind {kind!r}.") from None
    stream: StreamFunction = importlib.import_module(f"llm.providers.{module}").stream
    return stream


# The kinds whose protocol embeds (llm.models.EMBEDDING_PROVIDER_KINDS), and those of them that
# embed OpenAI's token arrays as well as text.
EMBEDDING_PROTOCOLS = {
    kind: module for kind, module in PROTOCOLS.items() if kind not in ("anthropic", "deepseek")
}
TOKEN_ARRAY_KINDS = frozenset({"openai", "azure_openai", "openai_compatible", "demo"})


def embedder_for(kind: str) -> EmbedFunction:
    try:
        module = EMBEDDING_PROTOCOLS[kind]
    except KeyError:
        # The catalog refuses an embedding model on such a provider; this is the last guard.
        raise LLMError("upstream_bad_request", f"The provider kind {kind!r} has no embeddings API.") from None
    embed: EmbedFunction = importlib.import_module(f"llm.providers.{module}").embed
    return embed
