"""A fake LLM provider: a real HTTP server speaking OpenAI, Azure OpenAI, Anthropic and Gemini.

A development and testing package, outside the apps: no code Nexus serves with imports it.

    python -m fake_upstream --port 8765     (or: manage.py fake_upstream --port 8765)

Point a provider's base URL at it (`http://127.0.0.1:8765/v1` for the OpenAI kinds,
`http://127.0.0.1:8765` for Azure, Anthropic and Gemini) and the official SDKs talk to it
as they talk to the real services, streaming or not:

    POST .../chat/completions                                  OpenAI, DeepSeek, compatible
    POST /openai/deployments/{deployment}/chat/completions     Azure OpenAI (?api-version=)
    POST /v1/messages                                          Anthropic
    POST /v1beta/models/{model}:generateContent                Gemini
    POST /v1beta/models/{model}:streamGenerateContent?alt=sse  Gemini, streaming
    POST .../embeddings                                        OpenAI embeddings (float, base64)
    POST /openai/deployments/{deployment}/embeddings           Azure OpenAI embeddings
    POST /v1beta/models/{model}:embedContent, :batchEmbedContents   Gemini embeddings

Knobs shape the next replies: `POST /_control` with a JSON object of knobs (see `Knobs`),
or per request with `x-fake-<knob>` headers (`x-fake-error-status: 503`), handy as a
provider's extra headers. `POST /_reset` restores the defaults and forgets the requests;
`GET /_requests` lists what was received (path, query, headers, JSON body) and how each
exchange ended, including whether the client closed a stream early.

Only the standard library: it runs anywhere the project does, including as a subprocess
of the tests and the benchmarks.
"""

from __future__ import annotations

from fake_upstream.server import DEFAULT_REPLY, FakeUpstream, Knobs, main, run

__all__ = ["DEFAULT_REPLY", "FakeUpstream", "Knobs", "main", "run"]
