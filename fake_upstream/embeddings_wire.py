"""The fake upstream's embeddings: OpenAI's (and Azure's) /embeddings, and Gemini's
:embedContent and :batchEmbedContents.

The vectors are made up but deterministic: the same text (or token array) and length always
give the same vector, of length 1. OpenAI's answer is floats or, with `encoding_format`
base64, little-endian float32 in base64, as OpenAI sends them; `dimensions` (Gemini's
`outputDimensionality`) sets the length, else the model's usual one. Usage counts a token
per word of a text and per id of a token array, reported as OpenAI's `prompt_tokens` and as
Gemini's `usageMetadata.promptTokenCount`; the knob omit_usage leaves it out.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from typing import TYPE_CHECKING, Any

from fake_upstream.gemini_wire import GeminiProtocol
from fake_upstream.openai_wire import OpenAIProtocol
from fake_upstream.protocols import Protocol

if TYPE_CHECKING:
    from fake_upstream.server import Exchange

Item = str | list[int]


def usual_dimensions(model: str) -> int:
    """The length of a model's vectors when the request names none, as the real ones have."""
    return 3072 if "large" in model or "gemini" in model else 1536


def vector(item: Item, dimensions: int) -> list[float]:
    """A made-up vector of length 1 for one input: the same input, the same vector."""
    seed = item.encode() if isinstance(item, str) else ",".join(map(str, item)).encode()
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(seed + block.to_bytes(4, "little")).digest()
        values += [(byte - 127.5) / 127.5 for byte in digest]
        block += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return [round(value / norm, 8) for value in values]


def tokens(item: Item) -> int:
    return len(item.split()) if isinstance(item, str) else len(item)


class EmbeddingProtocol(Protocol):
    """What the server asks of an embeddings wire format, beside errors and keys."""

    def inputs(self, body: dict[str, Any]) -> list[Item]:
        raise NotImplementedError

    def dimensions(self, body: dict[str, Any]) -> int | None:
        raise NotImplementedError

    def reply(self, body: dict[str, Any], vectors: list[list[float]], usage: int | None) -> dict[str, Any]:
        raise NotImplementedError


class OpenAIEmbeddings(OpenAIProtocol, EmbeddingProtocol):
    """POST .../embeddings, and Azure's /openai/deployments/{deployment}/embeddings."""

    def __init__(self, exchange: Exchange) -> None:
        super().__init__(exchange)
        match = re.search(r"/openai/deployments/([^/]+)/embeddings$", exchange.path)
        self.deployment = match.group(1) if match else None
        self.name = "azure_openai" if self.deployment else "openai"

    def inputs(self, body: dict[str, Any]) -> list[Item]:
        value = body.get("input")
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and value and all(isinstance(token, int) for token in value):
            return [value]  # one token array
        if isinstance(value, list) and value and all(isinstance(item, str | list) for item in value):
            return value
        raise ValueError("'input' must be a string, a list of strings, or token arrays")

    def dimensions(self, body: dict[str, Any]) -> int | None:
        value = body.get("dimensions")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def reply(self, body: dict[str, Any], vectors: list[list[float]], usage: int | None) -> dict[str, Any]:
        base64_wanted = body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": _base64(values) if base64_wanted else values,
            }
            for index, values in enumerate(vectors)
        ]
        reply: dict[str, Any] = {"object": "list", "data": data, "model": self.model(body)}
        if usage is not None:
            reply["usage"] = {"prompt_tokens": usage, "total_tokens": usage}
        return reply


class GeminiEmbeddings(GeminiProtocol, EmbeddingProtocol):
    """POST /v1beta/models/{model}:embedContent (one content) and :batchEmbedContents."""

    @property
    def batch(self) -> bool:
        return self.exchange.path.endswith(":batchEmbedContents")

    def streaming(self, body: dict[str, Any]) -> bool:
        return False

    def _requests(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if not self.batch:
            return [body]
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise ValueError("requests must be a non-empty list")
        if len(requests) > 100:
            raise ValueError("At most 100 requests can be in one batch.")
        return requests

    def inputs(self, body: dict[str, Any]) -> list[Item]:
        texts: list[Item] = []
        for request in self._requests(body):
            content = self._field(request, "content") or {}
            parts = self._field(content, "parts") or []
            texts.append(" ".join(str(part.get("text", "")) for part in parts if isinstance(part, dict)))
        return texts

    def dimensions(self, body: dict[str, Any]) -> int | None:
        value = self._field(self._requests(body)[0], "outputDimensionality")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def reply(self, body: dict[str, Any], vectors: list[list[float]], usage: int | None) -> dict[str, Any]:
        reply: dict[str, Any] = (
            {"embeddings": [{"values": values} for values in vectors]}
            if self.batch
            else {"embedding": {"values": vectors[0]}}
        )
        if usage is not None:
            reply["usageMetadata"] = {"promptTokenCount": usage, "totalTokenCount": usage}
        return reply


def _base64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
