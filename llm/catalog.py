"""The models `manage.py seed` offers for each provider kind, with their list prices.

Prices are US dollars per million tokens, as the providers list them for standard
(non-batch, uncached) use in November 2026; capabilities are what the provider documents
for the model through its API; embedding models have an input price only. Operators change
both in the admin, and seeding again never overwrites what they set.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from llm.types import CAPABILITIES, Capability


@dataclass(frozen=True)
class CatalogModel:
    name: str
    display_name: str
    context_window: int
    max_output_tokens: int
    input_price: Decimal
    output_price: Decimal
    capabilities: frozenset[Capability]
    kind: str = "chat"


ALL: frozenset[Capability] = frozenset(CAPABILITIES)
# DeepSeek V4 reads no images, and its structured output is json_object (no schemas).
NO_VISION: frozenset[Capability] = frozenset({"tools", "structured_output", "reasoning"})
NO_CAPABILITIES: frozenset[Capability] = frozenset()


def _model(
    name: str,
    display: str,
    context: int,
    output: int,
    price_in: str,
    price_out: str,
    capabilities: frozenset[Capability] = ALL,
) -> CatalogModel:
    return CatalogModel(name, display, context, output, Decimal(price_in), Decimal(price_out), capabilities)


def _embedding(name: str, display: str, context: int, price_in: str) -> CatalogModel:
    """An embedding model: `context` is the most input tokens it embeds at once; it writes
    no output, so it has no output price and no capabilities."""
    return CatalogModel(
        name, display, context, 0, Decimal(price_in), Decimal(0), NO_CAPABILITIES, kind="embedding"
    )


CATALOG: dict[str, tuple[CatalogModel, ...]] = {
    "openai": (
        _model("gpt-5.5", "GPT-5.5", 1_050_000, 128_000, "5.00", "30.00"),
        _model("gpt-5.4", "GPT-5.4", 1_050_000, 128_000, "2.50", "15.00"),
        _model("gpt-5.4-mini", "GPT-5.4 mini", 400_000, 128_000, "0.75", "4.50"),
        _model("gpt-5.4-nano", "GPT-5.4 nano", 400_000, 128_000, "0.20", "1.25"),
        _embedding("text-embedding-3-small", "Text Embedding 3 Small", 8_191, "0.02"),
        _embedding("text-embedding-3-large", "Text Embedding 3 Large", 8_191, "0.13"),
    ),
    "anthropic": (
        _model("claude-opus-5-5", "Claude Opus 5.5", 1_000_000, 128_000, "4.00", "20.00"),
        _model("claude-sonnet-5", "Claude Sonnet 5", 1_000_000, 128_000, "2.00", "10.00"),
        _model("claude-haiku-4-5", "Claude Haiku 4.5", 200_000, 64_000, "1.00", "5.00"),
    ),
    "gemini": (
        # Up to 200k input tokens; longer prompts cost more upstream.
        _model("gemini-3.1-pro-preview", "Gemini 3.1 Pro (preview)", 1_048_576, 65_536, "2.00", "12.00"),
        # Its standard rate; Google charges half until the end of 2026.
        _model("gemini-3.8-flash", "Gemini 3.8 Flash", 1_048_576, 65_536, "1.50", "7.50"),
        _model("gemini-3.5-flash-lite", "Gemini 3.5 Flash-Lite", 1_048_576, 65_536, "0.30", "2.50"),
        _embedding("gemini-embedding-001", "Gemini Embedding", 2_048, "0.15"),
    ),
    "deepseek": (
        # Peak-hour rates (cache misses); DeepSeek charges half off-peak.
        _model("deepseek-v4-flash", "DeepSeek V4 Flash", 1_000_000, 384_000, "0.30", "1.20", NO_VISION),
        _model("deepseek-v4-pro", "DeepSeek V4 Pro", 1_000_000, 384_000, "1.32", "3.96", NO_VISION),
    ),
}

# The demo provider streams canned text: it reads no images, calls no tools, writes no JSON.
DEMO = _model("demo", "Demo (offline)", 8_192, 1_024, "0", "0", NO_CAPABILITIES)
# ... and embeds offline: vectors made from the words' hashes, so that a bare checkout can embed.
DEMO_EMBEDDING = _embedding("demo-embedding", "Demo embedding (offline)", 8_192, "0")
DEMO_MODELS = (DEMO, DEMO_EMBEDDING)


def find(name: str) -> CatalogModel | None:
    """The catalog entry of an upstream model name, whichever provider lists it (the demo's too)."""
    listed = (model for models in (*CATALOG.values(), DEMO_MODELS) for model in models)
    return next((model for model in listed if model.name == name), None)
