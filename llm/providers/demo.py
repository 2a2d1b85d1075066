"""The `demo` provider: a helpful canned reply, streamed at a realistic pace, with no network.

It lets Nexus run end to end with nothing configured. The pause between tokens is
settings.LLM_DEMO_TOKEN_DELAY, or the model's `token_delay` default parameter.

It embeds offline too: each word (or token id) of an input adds ±1 at a few positions chosen
by its hash, and the vector is scaled to length 1. Texts that share words get similar
vectors, so a retrieval demo finds something; the same input always gets the same vector.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import AsyncGenerator

from django.conf import settings

from llm.providers.base import AdapterEvent, Embedded, Params
from llm.types import ChatRequest, EmbeddingRequest, Finish, ModelTarget, TextDelta

_REPLIES = (
    "Hello! I am the **demo model** of Nexus. I run inside the server, with no provider and no "
    "network, so everything around me works end to end: streaming, saving the conversation, "
    "usage accounting and quotas.\n\n"
    "To talk to a real model, add a provider in the admin (OpenAI, Azure OpenAI, Anthropic, "
    "Gemini, DeepSeek or any OpenAI-compatible server), or set its API key, such as "
    "`OPENAI_API_KEY`, and run `manage.py seed`.",
    "Thanks for your message. This is a canned reply from the **demo model**, which streams "
    "without calling any provider.\n\n"
    "Here is what you can try next:\n\n"
    "1. Open `/admin/` and add a provider with its API key.\n"
    "2. Add a model under it, with its prices, so usage is accounted.\n"
    "3. Ask again, naming that model: the reply will stream the same way, token by token.",
    "Good question! I am only the **demo model**, so I cannot really answer it, but I can show "
    "how Nexus streams a reply: each word you see arrives as its own event, the whole "
    "conversation is saved, and the tokens are counted against your quota.\n\n"
    "Point Nexus at a real provider (see *Providers and models* in the README) to get real answers.",
)
_QUOTE_LIMIT = 80
_PIECES = re.compile(r"\s*\S+")


def reply_for(request: ChatRequest) -> str:
    """The canned reply to a request: the same request always gets the same reply."""
    question = next((m.text for m in reversed(request.messages) if m.role == "user"), "")
    digest = hashlib.sha256(question.encode()).digest()
    reply = _REPLIES[digest[0] % len(_REPLIES)]
    quoted = " ".join(question.split())
    if quoted:
        if len(quoted) > _QUOTE_LIMIT:
            quoted = quoted[: _QUOTE_LIMIT - 1] + "…"
        reply = f"You said: “{quoted}”\n\n{reply}"
    return reply


async def stream(
    target: ModelTarget, request: ChatRequest, params: Params
) -> AsyncGenerator[AdapterEvent, None]:
    delay = float(params.extra.get("token_delay", settings.LLM_DEMO_TOKEN_DELAY))
    pieces = _PIECES.findall(reply_for(request))
    limit = params.max_tokens if params.max_tokens is not None else target.max_output_tokens
    for index, piece in enumerate(pieces):
        if index >= limit:
            yield Finish("length")
            return
        if delay:
            await asyncio.sleep(delay)
        yield TextDelta(piece)
    # No usage: the demo has no tokenizer of its own, so the service's estimate stands in.
    yield Finish("stop")


# The demo's vectors are this long unless the request asks for `dimensions`.
EMBEDDING_DIMENSIONS = 256
# Positions each word touches: more than one, so that two words rarely cancel out.
_POSITIONS_PER_WORD = 3
_WORDS = re.compile(r"\w+")


def vector_for(item: str | tuple[int, ...], dimensions: int) -> tuple[float, ...]:
    """The demo's vector of one input: hashed words (or token ids), normalized."""
    if isinstance(item, str):
        features = _WORDS.findall(item.lower()) or [item]
    else:
        features = [str(token) for token in item]
    values = [0.0] * dimensions
    for feature in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=4 * _POSITIONS_PER_WORD).digest()
        for position in range(_POSITIONS_PER_WORD):
            number = int.from_bytes(digest[4 * position : 4 * position + 4], "little")
            values[(number >> 1) % dimensions] += 1.0 if number & 1 else -1.0
    norm = math.sqrt(sum(value * value for value in values))
    if norm == 0:  # the words cancelled out: still a vector of length 1
        values[0], norm = 1.0, 1.0
    return tuple(value / norm for value in values)


async def embed(target: ModelTarget, request: EmbeddingRequest) -> Embedded:
    dimensions = request.dimensions or EMBEDDING_DIMENSIONS
    # No usage: as for its replies, the service's estimate of the input stands in.
    return Embedded(vectors=tuple(vector_for(item, dimensions) for item in request.inputs))
