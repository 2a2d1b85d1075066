"""The `demo` provider: a helpful canned reply, streamed at a realistic pace, with no network.

It lets Nexus run end to end with nothing configured. The pause between tokens is
settings.LLM_DEMO_TOKEN_DELAY, or the model's `token_delay` default parameter.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncGenerator

from django.conf import settings

from llm.providers.base import AdapterEvent, Params
from llm.types import ChatRequest, Finish, ModelTarget, TextDelta

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
