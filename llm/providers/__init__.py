"""One adapter per wire protocol; `adapter_for(kind)` picks the one a provider kind speaks.

Adapters are imported on first use, so a process that never calls Gemini never loads its SDK.
"""

from __future__ import annotations

import importlib

from llm.providers.base import StreamFunction

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


def adapter_for(kind: str) -> StreamFunction:
    try:
        module = PROTOCOLS[kind]
    except KeyError:
        raise ValueError(f"No adapter speaks the provider kind {kind!r}.") from None
    stream: StreamFunction = importlib.import_module(f"llm.providers.{module}").stream
    return stream
