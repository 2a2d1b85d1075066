"""llm.services.embed through each adapter and the fake upstream: vectors, usage, the router's
retries, fallbacks and timeouts, and the provider's errors mapped as for chat."""

from __future__ import annotations

import base64
import struct

import httpx
import pytest
from asgiref.sync import async_to_sync

from fake_upstream.embeddings_wire import vector
from llm.models import ModelFallback
from llm.selectors import route_get
from llm.services import embed
from llm.types import EmbeddingRequest, EmbeddingResult, LLMError

pytestmark = pytest.mark.django_db

EMBEDDING_KINDS = ("openai", "azure_openai", "openai_compatible", "gemini")


def embedder(upstream, kind: str = "openai", name: str = "embed", **fields):
    model = upstream.make_model(kind=kind, name=name, **fields)
    model.kind = "embedding"
    model.save()
    return model


def run(name: str, *inputs: str | tuple[int, ...], dimensions: int | None = None) -> EmbeddingResult:
    request = EmbeddingRequest(inputs=inputs, dimensions=dimensions)
    return async_to_sync(embed)(route_get(name=name), request)


def failure(name: str, *inputs: str) -> LLMError:
    with pytest.raises(LLMError) as error:
        run(name, *inputs)
    return error.value


@pytest.mark.parametrize("kind", EMBEDDING_KINDS)
def test_each_kind_brings_the_providers_vectors_and_token_count(fake_upstream, kind):
    embedder(fake_upstream, kind, upstream_name="text-embedding-3-small")

    result = run("embed", "one two three", "four", dimensions=16)

    assert result.vectors == (tuple(vector("one two three", 16)), tuple(vector("four", 16)))
    assert (result.input_tokens, result.estimated, result.target.name) == (4, False, "embed")


def test_a_provider_that_reports_no_usage_is_estimated(fake_upstream):
    embedder(fake_upstream)
    fake_upstream.configure(omit_usage=True)

    result = run("embed", "one two three")

    assert result.estimated and result.input_tokens == 3


def test_gemini_takes_long_lists_a_hundred_at_a_time(fake_upstream):
    embedder(fake_upstream, "gemini", upstream_name="gemini-embedding-001")
    texts = [f"text number {n}" for n in range(250)]

    result = run("embed", *texts, dimensions=4)

    assert result.vectors == tuple(tuple(vector(text, 4)) for text in texts)
    assert result.input_tokens == 750
    assert sorted(len(request["body"]["requests"]) for request in fake_upstream.requests()) == [50, 100, 100]


def test_a_failing_model_is_retried_then_falls_back(fake_upstream):
    primary = embedder(
        fake_upstream,
        name="primary",
        provider_fields={"extra_headers": {"x-fake-error-status": "503"}, "max_retries": 1},
    )
    backup = embedder(fake_upstream, "gemini", name="backup")
    ModelFallback.objects.create(model=primary, fallback=backup)

    result = run("primary", "hello")

    assert (result.target.name, result.attempts) == ("backup", 3)
    assert [request["model"] for request in fake_upstream.requests()] == ["primary", "primary", "backup"]


def test_a_slow_provider_times_out_and_is_not_retried(fake_upstream):
    embedder(fake_upstream, provider_fields={"first_token_timeout": 0.2})
    fake_upstream.configure(first_token_delay=2)

    error = failure("embed", "hello")

    assert error.code == "upstream_timeout"
    assert "0.2s" in error.message
    assert len(fake_upstream.requests()) == 1


@pytest.mark.parametrize(
    ("knobs", "code"),
    [
        ({"api_key": "another-key"}, "upstream_auth"),
        ({"error_status": 429}, "upstream_rate_limited"),
        ({"error_status": 400}, "upstream_bad_request"),
    ],
)
@pytest.mark.parametrize("kind", ["azure_openai", "gemini"])
def test_provider_errors_map_as_for_chat(fake_upstream, kind, knobs, code):
    embedder(fake_upstream, kind, provider_fields={"max_retries": 0})
    fake_upstream.configure(**knobs)

    error = failure("embed", "hello")

    assert error.code == code
    assert "another-key" not in error.message and "sk-fake" not in error.message


async def test_anthropic_has_no_embedder(fake_upstream):
    from llm.providers import embedder_for

    with pytest.raises(LLMError) as error:
        await embedder_for("anthropic")

    assert error.value.code == "upstream_bad_request"


def test_the_fake_speaks_base64_and_the_single_embed_content(fake_upstream):
    as_base64 = httpx.post(
        f"{fake_upstream.url}/v1/embeddings",
        json={"model": "m", "input": ["hi there"], "encoding_format": "base64", "dimensions": 4},
    ).json()
    single = httpx.post(
        f"{fake_upstream.url}/v1beta/models/gemini-embedding-001:embedContent",
        json={"content": {"parts": [{"text": "hi there"}]}, "outputDimensionality": 4},
    ).json()

    packed = base64.b64decode(as_base64["data"][0]["embedding"])
    assert struct.unpack("<4f", packed) == pytest.approx(vector("hi there", 4), abs=1e-7)
    assert as_base64["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert single["embedding"]["values"] == vector("hi there", 4)
    assert single["usageMetadata"]["promptTokenCount"] == 2
    assert [request["protocol"] for request in fake_upstream.requests()] == ["openai", "gemini"]
