"""Writes and the calls of the llm app.

`stream_chat(route, request)` is the one way to ask a model for a reply: it tries the
route's targets in order, retrying each with backoff, enforces the provider's timeouts,
serves identical temperature-0 requests from the cache, and yields the events of
llm.types. `embed(route, request)` asks an embedding model for vectors through the same
retries, fallbacks and timeouts. Neither touches the database: everything they need comes
in the Route.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import re
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction

from llm import crypto
from llm.models import Model, ModelAlias, ModelFallback, Provider
from llm.providers import adapter_for, embedder_for
from llm.providers.base import AdapterEvent, Embedded, Params, timeout_error
from llm.tokens import estimate_request_tokens, estimate_tokens
from llm.types import (
    ChatMessage,
    ChatRequest,
    EmbeddingRequest,
    EmbeddingResult,
    Finish,
    LLMError,
    ModelTarget,
    ReasoningDelta,
    Route,
    Served,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from nexus.lib.errors import ApiError

logger = logging.getLogger(__name__)

# A retry waits at most this long; a provider asking for longer is skipped for the fallbacks.
_RETRY_MAX_DELAY = 10.0
_CACHE_VERSION = 2
_REPLAY_PIECES = re.compile(r"\s*\S+\s*|\s+")


async def stream_chat(route: Route, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
    """Stream a reply: Served, then TextDelta, ReasoningDelta and ToolCallDelta as they come,
    then one Usage, then a Finish per choice.

    Served comes once the answering provider's stream has produced its first chunk (or at
    once, for a cache hit), so no retry or fallback ever follows it. Raises LLMError. Before
    the first token, failures are retried with backoff (connection errors, 429, 5xx), then
    the fallbacks are tried in order; after it, a failure is raised at once and the caller
    keeps what it received. Closing the stream (`aclose()`, or `contextlib.aclosing`) or
    cancelling its consumer closes the upstream connection.
    """
    primary = route.primary
    cache_key = _cache_key(primary, request)
    if cache_key is not None:
        cached = await _cache_get(cache_key)
        if cached is not None:
            for event in _replay(primary, cached):
                yield event
            return

    attempts = 0
    last_error: LLMError | None = None
    for target in route.targets:
        params = Params.merge(target, request)
        for retry in range(target.provider.max_retries + 1):
            attempts += 1
            async with contextlib.aclosing(_timed(target, request, params)) as events:
                try:
                    first = await anext(events, None)
                except LLMError as error:
                    last_error = error
                    delay = _failed(error, target=target, retry=retry, attempts=attempts)
                    if delay is None:
                        break
                    await asyncio.sleep(delay)
                    continue

                yield Served(target=target, cached=False, attempts=attempts)
                async with contextlib.aclosing(_relay(target, request, params, events, first)) as relayed:
                    async for event in relayed:
                        yield event
                return
        if last_error is not None and not _falls_back(last_error):
            raise last_error
    assert last_error is not None  # noqa: S101 - a route always has a target
    raise last_error


async def embed(route: Route, request: EmbeddingRequest) -> EmbeddingResult:
    """Embed the request's inputs with the route's model, or a fallback; raises LLMError.

    The same router as stream_chat's: each target is retried with backoff (connection
    errors, 429, 5xx), then the fallbacks are tried in order, and a request the provider
    refused as bad goes to no fallback. The reply must come within the provider's first-token
    timeout (and its total one): it is the whole answer. Input tokens are the provider's
    count, or an estimate when it gives none. Touches no database.
    """
    attempts = 0
    last_error: LLMError | None = None
    for target in route.targets:
        for retry in range(target.provider.max_retries + 1):
            attempts += 1
            try:
                result = await _embed_timed(target, request)
            except LLMError as error:
                last_error = error
                delay = _failed(error, target=target, retry=retry, attempts=attempts)
                if delay is None:
                    break
                await asyncio.sleep(delay)
                continue
            tokens = result.input_tokens
            return EmbeddingResult(
                vectors=result.vectors,
                input_tokens=tokens if tokens is not None else estimate_embedding_tokens(request),
                target=target,
                estimated=tokens is None,
                attempts=attempts,
            )
        if last_error is not None and not _falls_back(last_error):
            raise last_error
    assert last_error is not None  # noqa: S101 - a route always has a target
    raise last_error


async def _embed_timed(target: ModelTarget, request: EmbeddingRequest) -> Embedded:
    provider = target.provider
    limit = min(provider.first_token_timeout, provider.total_timeout)
    try:
        async with asyncio.timeout(limit) as scope:
            embed = await embedder_for(provider.kind)
            return await embed(target, request)
    except TimeoutError:
        if scope.expired():
            # As a stream's first token: not retried on this provider, fallbacks still run.
            raise timeout_error(target, f"no reply within {limit:g}s", retryable=False) from None
        raise


def estimate_embedding_tokens(request: EmbeddingRequest) -> int:
    """The input tokens of an embedding request, estimated: a token array counts what it holds."""
    return sum(estimate_tokens(item) if isinstance(item, str) else len(item) for item in request.inputs)


async def _relay(
    target: ModelTarget,
    request: ChatRequest,
    params: Params,
    events: AsyncIterator[AdapterEvent],
    first: AdapterEvent | None,
) -> AsyncGenerator[StreamEvent, None]:
    """The events of an opened stream, with usage and the finishes put last and filled in.

    The reply is held to its token limit whatever the provider does: a provider that streams
    past it (some OpenAI-compatible servers ignore max_tokens) is cut there with finish
    `length`, and the usage never counts more output than the limit, so the charge stays
    within what admission reserved. Each delta counts as at least one token.
    """
    limit = (params.max_tokens or target.max_output_tokens) * request.choices
    texts: list[str] = []
    deltas = 0
    plain = True  # only text: a reply the cache can replay
    usage: Usage | None = None
    finishes: dict[int, Finish] = {}
    cut = False
    event = first
    while event is not None:
        if isinstance(event, TextDelta | ReasoningDelta | ToolCallDelta):
            if isinstance(event, TextDelta) and not event.text:
                event = await anext(events, None)
                continue
            if deltas >= limit:
                cut = True
                break
            deltas += 1
            if isinstance(event, TextDelta):
                texts.append(event.text)
                plain = plain and event.choice == 0 and not event.logprobs
            else:
                texts.append(event.arguments if isinstance(event, ToolCallDelta) else event.text)
                plain = False
            yield event
        elif isinstance(event, Usage):
            usage = event
        else:
            finishes[event.choice] = event
        event = await anext(events, None)
    text = "".join(texts)
    if usage is None or cut:
        output = max(deltas, estimate_tokens(text))
        input_tokens = usage.input_tokens if usage is not None else estimate_request_tokens(request)
        usage = Usage(input_tokens=input_tokens, output_tokens=output, estimated=True)
    if usage.output_tokens > limit:
        usage = replace(usage, output_tokens=limit)
    if cut:
        finishes = {choice: Finish("length", choice) for choice in range(request.choices)}
    yield usage
    for choice in sorted(finishes) or [0]:
        yield finishes.get(choice) or Finish("stop", choice)
    key = _cache_key(target, request)
    finish = finishes.get(0) or Finish("stop")
    if key is not None and plain and finish.reason in ("stop", "length"):
        await _cache_set(key, text=text, usage=usage, finish=finish)


async def _timed(
    target: ModelTarget, request: ChatRequest, params: Params
) -> AsyncGenerator[AdapterEvent, None]:
    """The adapter's events, under the provider's first-token, idle and total timeouts."""
    provider = target.provider
    loop = asyncio.get_running_loop()
    deadline = loop.time() + provider.total_timeout
    started = False
    stream = await adapter_for(provider.kind)
    async with contextlib.aclosing(stream(target, request, params)) as events:
        while True:
            if started:
                limit, waiting_for = provider.idle_timeout, f"no new token within {provider.idle_timeout:g}s"
            else:
                limit = provider.first_token_timeout
                waiting_for = f"no first token within {provider.first_token_timeout:g}s"
            remaining = deadline - loop.time()
            if remaining < limit:
                limit = max(remaining, 0)
                waiting_for = f"no complete reply within {provider.total_timeout:g}s"
            try:
                async with asyncio.timeout(limit) as scope:
                    event = await anext(events)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if scope.expired():
                    # Not retried on this provider: that would multiply the wait. Fallbacks still run.
                    raise timeout_error(target, waiting_for, retryable=False) from None
                raise
            started = started or isinstance(event, TextDelta | ReasoningDelta | ToolCallDelta)
            yield event


def _failed(error: LLMError, *, target: ModelTarget, retry: int, attempts: int) -> float | None:
    """Logs a failed attempt; how long to wait before trying `target` again, or None to move on."""
    delay = _retry_delay(error, retry, target)
    logger.warning(
        "llm: %s via %s failed (attempt %d, %s): %s%s",
        target.name,
        target.provider.name,
        attempts,
        error.code,
        error.detail or error.message,
        f"; retrying in {delay:.2f}s" if delay is not None else "",
    )
    return delay


def _retry_delay(error: LLMError, retry: int, target: ModelTarget) -> float | None:
    """How long to wait before trying `target` again, or None to move on."""
    if not error.retryable or retry >= target.provider.max_retries:
        return None
    base = settings.LLM_RETRY_BASE_DELAY * 2**retry
    delay = base / 2 + random.uniform(0, base / 2)  # noqa: S311 - jitter, not a secret
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return delay if delay <= _RETRY_MAX_DELAY else None


def _falls_back(error: LLMError) -> bool:
    """Whether another model may succeed where this one failed: not when the request is at fault."""
    return error.code != "upstream_bad_request"


# --- Response cache --------------------------------------------------------------------


def _cache_key(target: ModelTarget, request: ChatRequest) -> str | None:
    """The cache key of a request to `target`, or None when its replies are not cached.

    Replies that are more than one text (tool calls, several choices, log probabilities)
    are never cached: the cache replays text only.
    """
    if not target.cache_enabled or request.tools or request.choices > 1 or request.options.get("logprobs"):
        return None
    params = Params.merge(target, request)
    if params.temperature != 0:
        return None
    identity = {
        "provider": [target.provider.id, target.provider.kind, target.provider.base_url],
        "model": target.upstream_name,
        "params": params.as_dict(),
        "system": request.system,
        # The dataclasses' reprs name every field: parts, tool calls and ids included.
        "messages": [repr(message) for message in request.messages],
        "response_format": repr(request.response_format),
        "options": dict(request.options),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return f"llm:reply:v{_CACHE_VERSION}:{digest}"


# The cache's own a* methods run on the caller's thread-sensitive executor, which a turn
# (a task that outlives the request that started it) no longer has: its writes failed with
# "CurrentThreadExecutor already quit". Any thread will do for a cache round trip.
@sync_to_async(thread_sensitive=False)
def _cache_read(key: str) -> Any:
    return cache.get(key)


@sync_to_async(thread_sensitive=False)
def _cache_write(key: str, value: dict[str, Any], *, timeout: int) -> None:
    cache.set(key, value, timeout=timeout)


async def _cache_get(key: str) -> dict[str, Any] | None:
    try:
        value = await _cache_read(key)
    except Exception:  # the cache is an optimisation: a broken one must not fail the call
        logger.warning("llm: the response cache could not be read", exc_info=True)
        return None
    return value if isinstance(value, dict) else None


async def _cache_set(key: str, *, text: str, usage: Usage, finish: Finish) -> None:
    value = {
        "text": text,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "estimated": usage.estimated,
        "finish": finish.reason,
    }
    try:
        await _cache_write(key, value, timeout=settings.LLM_CACHE_SECONDS)
    except Exception:
        logger.warning("llm: the response cache could not be written", exc_info=True)


def _replay(target: ModelTarget, cached: dict[str, Any]) -> list[StreamEvent]:
    events: list[StreamEvent] = [Served(target=target, cached=True, attempts=0)]
    events += [TextDelta(piece) for piece in _REPLAY_PIECES.findall(str(cached.get("text", "")))]
    events.append(
        Usage(
            input_tokens=int(cached.get("input_tokens", 0)),
            output_tokens=int(cached.get("output_tokens", 0)),
            estimated=bool(cached.get("estimated", False)),
        )
    )
    events.append(Finish(str(cached.get("finish", "stop"))))
    return events


# --- The catalog ------------------------------------------------------------------------


@transaction.atomic
def provider_create(*, name: str, kind: str, api_key: str = "", **fields: Any) -> Provider:
    provider = Provider(name=name, kind=kind, api_key_encrypted=crypto.encrypt(api_key), **fields)
    _validate(provider)
    provider.save()
    return provider


@transaction.atomic
def provider_update(*, provider: Provider, api_key: str | None = None, **fields: Any) -> Provider:
    """Change a provider; `api_key=None` keeps the key, "" removes it."""
    for name, value in fields.items():
        setattr(provider, name, value)
    if api_key is not None:
        provider.api_key_encrypted = crypto.encrypt(api_key)
    _validate(provider)
    provider.save()
    return provider


def _validate(instance: Provider | Model | ModelAlias) -> None:
    """The model's own validation (prices, URLs, choices, uniqueness) as a 400 with fields."""
    try:
        instance.full_clean()
    except ValidationError as exc:
        fields = exc.message_dict
        message = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in fields.items())
        raise ApiError(message, code="invalid", param=next(iter(fields), None), fields=fields) from None


def provider_delete(*, provider: Provider) -> None:
    """Delete a provider and its models (usage records keep their history, without the link)."""
    provider.delete()


@transaction.atomic
def model_create(
    *,
    name: str,
    provider: Provider,
    fallbacks: list[str] | None = None,
    aliases: list[str] | None = None,
    **fields: Any,
) -> Model:
    model = Model(name=name, provider=provider, **fields)
    _validate(model)
    model.save()
    if fallbacks:
        model_set_fallbacks(model=model, names=fallbacks)
    if aliases:
        model_set_aliases(model=model, names=aliases)
    return model


@transaction.atomic
def model_update(
    *, model: Model, fallbacks: list[str] | None = None, aliases: list[str] | None = None, **fields: Any
) -> Model:
    """Change a model; `fallbacks` and `aliases`, when given, replace the whole list."""
    for name, value in fields.items():
        setattr(model, name, value)
    _validate(model)
    model.save()
    if fallbacks is not None:
        model_set_fallbacks(model=model, names=fallbacks)
    if aliases is not None:
        model_set_aliases(model=model, names=aliases)
    return model


@transaction.atomic
def model_alias_create(*, name: str, model: Model) -> ModelAlias:
    """Another name clients may call `model` by; 400 when a model or another alias has it."""
    alias = ModelAlias(name=name, model=model)
    _validate(alias)
    alias.save()
    return alias


@transaction.atomic
def model_set_aliases(*, model: Model, names: list[str]) -> None:
    """Make `names` the model's aliases (the others it had are removed)."""
    model.aliases.exclude(name__in=names).delete()
    kept = set(model.aliases.values_list("name", flat=True))
    for name in dict.fromkeys(names):
        if name not in kept:
            try:
                model_alias_create(name=name, model=model)
            except ApiError as error:
                raise ApiError(
                    error.message, code="invalid", param="aliases", fields={"aliases": [error.message]}
                ) from None


def model_delete(*, model: Model) -> None:
    model.delete()


@transaction.atomic
def model_set_fallbacks(*, model: Model, names: list[str]) -> None:
    """Make `names` (other models) the model's fallbacks, tried in this order."""
    by_name = {other.name: other for other in Model.objects.filter(name__in=names).exclude(pk=model.pk)}
    missing = [name for name in names if name not in by_name]
    if missing:
        message = f"No such models: {', '.join(missing)}."
        raise ApiError(message, code="invalid", param="fallbacks", fields={"fallbacks": [message]})
    # A fallback takes the same requests: an embedding model's fallbacks embed too.
    other_kind = [name for name in names if by_name[name].kind != model.kind]
    if other_kind:
        message = f"Not {model.kind} models, as {model.name} is: {', '.join(other_kind)}."
        raise ApiError(message, code="invalid", param="fallbacks", fields={"fallbacks": [message]})
    ModelFallback.objects.filter(model=model).delete()
    ModelFallback.objects.bulk_create(
        ModelFallback(model=model, fallback=by_name[name], position=position)
        for position, name in enumerate(names)
    )


async def provider_test_connection(*, target: ModelTarget) -> float:
    """Ask `target` for a one-token reply (an embedding model: for one vector); the seconds it
    took, or LLMError."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    if target.kind == "embedding":
        await embed(Route(primary=target), EmbeddingRequest(inputs=("OK",)))
        return loop.time() - started
    request = ChatRequest(messages=(ChatMessage(role="user", content="Say OK."),), max_tokens=1)
    async with contextlib.aclosing(stream_chat(Route(primary=target), request)) as events:
        async for _event in events:
            pass
    return loop.time() - started
