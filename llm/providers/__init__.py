"""One adapter per wire protocol; `adapter_for(kind)` picks the one a provider kind speaks,
`embedder_for(kind)` its embeddings call.

Adapters are imported on first use, so a process that never calls Gemini never loads its SDK,
and in a thread, so that the event loop (every other stream of the process) goes on while an
SDK loads: a second or more.
"""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType

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


_imported: dict[str, ModuleType] = {}  # the adapters whose import has finished


async def _adapter_module(module: str) -> ModuleType:
    loaded = _imported.get(module)
    if loaded is None:
        # Not sys.modules: it holds a module another thread is still importing.
        loaded = await asyncio.to_thread(importlib.import_module, f"llm.providers.{module}")
        _imported[module] = loaded
    return loaded


async def adapter_for(kind: str) -> StreamFunction:
    try:
        module = PROTOCOLS[kind]
    except KeyError:
        raise ValueError(f"No adapter speaks the provider kind {kind!r}.") from None
    stream: StreamFunction = (await _adapter_module(module)).stream
    return stream


# The kinds whose protocol embeds (llm.models.EMBEDDING_PROVIDER_KINDS), and those of them that
# embed OpenAI's token arrays as well as text.
EMBEDDING_PROTOCOLS = {
    kind: module for kind, module in PROTOCOLS.items() if kind not in ("anthropic", "deepseek")
}
TOKEN_ARRAY_KINDS = frozenset({"openai", "azure_openai", "openai_compatible", "demo"})


async def embedder_for(kind: str) -> EmbedFunction:
    try:
        module = EMBEDDING_PROTOCOLS[kind]
    except KeyError:
        # The catalog refuses an embedding model on such a provider; this is the last guard.
        raise LLMError("upstream_bad_request", f"The provider kind {kind!r} has no embeddings API.") from None
    embed: EmbedFunction = (await _adapter_module(module)).embed
    return embed
