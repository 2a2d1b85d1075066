"""POST /v1/embeddings: OpenAI's embeddings API on Nexus keys, for RAG front ends and retrievers.

The request and the reply are OpenAI's: `input` a string, a list of strings, a token array or
a list of token arrays (at most 2048 inputs), `model`, `dimensions`, `encoding_format` (float,
or base64: little-endian float32, which the openai SDK asks for by default and decodes) and
`user`. Any embedding model of the catalog answers, on any provider kind that embeds; a chat
model is refused with a 400, as the chat surfaces refuse an embedding model.

The call is admitted, recorded and charged as a chat turn is, with the same pieces: the key's
model restrictions and maintenance mode, then a reservation of its estimated input tokens
(billing.admission_reserve, with no output), then the ledger's record of kind `embedding`
with the tokens the provider counted, journaled first (chats.journal) so that an outage
delays the record and never loses it. A call the provider refused is charged nothing: its
reservation is released.

The DRF view prepares the call in a thread and gives its connection back; the provider is
called on the event loop, holding no database connection. A client that goes away does not
stop the call: the provider charges it anyway, and so the ledger records what it counted.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpResponseBase, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from accounts.models import ApiKey, User
from billing.models import CallKind, Outcome
from billing.services import Admission, admission_release, admission_reserve
from chats import journal
from chats.answering import Pending
from chats.completions import InvalidParameter, read_model_of
from chats.gateway import GatewayView, _upstream_error_response
from chats.recovery import outcome_save, sweeper_ensure
from chats.turn import model_route
from llm.providers import TOKEN_ARRAY_KINDS
from llm.services import embed, estimate_embedding_tokens
from llm.types import EmbeddingRequest, EmbeddingResult, LLMError, Route
from nexus.lib import metrics
from nexus.lib.db_threads import in_thread
from nexus.lib.maintenance import maintenance_check

logger = logging.getLogger(__name__)

# OpenAI's limits: inputs per request; and a vector no model makes longer.
MAX_INPUTS = 2048
MAX_DIMENSIONS = 16_384
_MAX_TOKEN_ID = 2**31 - 1
_MAX_USER_CHARS = 512
_FIELDS = ("input", "model", "dimensions", "encoding_format", "user")
_ENCODINGS = ("float", "base64")

# Calls whose client left: they finish and settle on their own; kept here so none is collected.
_unattended: set[asyncio.Future[Any]] = set()


@dataclass(frozen=True, slots=True)
class EmbeddingCall:
    """A parsed request: the model's name, the normalized request, and how to encode the vectors."""

    model: str
    request: EmbeddingRequest
    encoding_format: str = "float"


@dataclass(frozen=True, slots=True)
class PreparedEmbedding:
    route: Route
    request: EmbeddingRequest
    admission: Admission


# --- the request ---------------------------------------------------------------------------


def _invalid(param: str, message: str, code: str = "invalid_value") -> InvalidParameter:
    return InvalidParameter(message, code=code, param=param)


def _token_array(value: list[Any], param: str) -> tuple[int, ...]:
    if not value:
        raise _invalid(param, f"{param} must not be an empty token array.")
    for position, token in enumerate(value):
        if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token <= _MAX_TOKEN_ID:
            raise _invalid(f"{param}[{position}]", "A token array holds token ids: integers of 0 or more.")
    return tuple(value)


def _text(value: str, param: str) -> str:
    if not value:
        raise _invalid(param, f"{param} must not be an empty string.")
    return value


def _inputs(value: Any) -> tuple[str | tuple[int, ...], ...]:
    """OpenAI's four shapes of `input` as a tuple of texts or token arrays."""
    if value is None:
        raise _invalid("input", "input is required.")
    if isinstance(value, str):
        return (_text(value, "input"),)
    if not isinstance(value, list):
        raise _invalid("input", "input must be a string, a list of strings, or token arrays.")
    if not value:
        raise _invalid("input", "input must not be an empty list.")
    if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        return (_token_array(value, "input"),)  # one token array
    if len(value) > MAX_INPUTS:
        raise _invalid("input", f"input may hold at most {MAX_INPUTS} items, not {len(value)}.")
    first = value[0]
    inputs: list[str | tuple[int, ...]] = []
    for index, item in enumerate(value):
        param = f"input[{index}]"
        if isinstance(item, str) and isinstance(first, str):
            inputs.append(_text(item, param))
        elif isinstance(item, list) and isinstance(first, list):
            inputs.append(_token_array(item, param))
        else:
            raise _invalid(param, "input must be all strings or all token arrays (lists of integers).")
    return tuple(inputs)


def parse_embedding_request(body: Any) -> EmbeddingCall:
    """OpenAI's request body as an EmbeddingCall; a 400 naming what is wrong."""
    model = read_model_of(body, _FIELDS)
    inputs = _inputs(body.get("input"))
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool)
        or not isinstance(dimensions, int)
        or not 1 <= dimensions <= MAX_DIMENSIONS
    ):
        raise _invalid("dimensions", f"dimensions must be an integer from 1 to {MAX_DIMENSIONS}.")
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in _ENCODINGS:
        raise _invalid("encoding_format", "encoding_format must be float or base64.")
    user = body.get("user")
    if user is not None and (not isinstance(user, str) or len(user) > _MAX_USER_CHARS):
        raise _invalid("user", f"user must be a string of at most {_MAX_USER_CHARS} characters.")
    return EmbeddingCall(
        model=model,
        request=EmbeddingRequest(inputs=inputs, dimensions=dimensions, user=user or ""),
        encoding_format=encoding or "float",
    )


# --- 1. prepare (sync) -----------------------------------------------------------------------


def embedding_prepare(*, user: User, api_key: ApiKey | None, call: EmbeddingCall) -> PreparedEmbedding:
    """Validates and admits an embedding call: 503 in maintenance, 403 for a model the key may
    not use, 404 for an unknown model, 400 for a chat model, 429 over the rate limit or budget."""
    maintenance_check(user=user)
    route = model_route(call.model, api_key=api_key, kind="embedding")
    target = route.primary
    if call.request.tokenized and target.provider.kind not in TOKEN_ARRAY_KINDS:
        raise InvalidParameter(
            f"The model {call.model} embeds text only: send strings, not token arrays.",
            code="model_not_capable",
            param="input",
        )
    admission = admission_reserve(
        user=user,
        api_key=api_key,
        target=target,
        input_tokens=estimate_embedding_tokens(call.request),
        max_output_tokens=0,
    )
    return PreparedEmbedding(route=route, request=call.request, admission=admission)


# --- 2. run (async, no connection) and 3. settle ------------------------------------------------


async def embedding_run(prepared: PreparedEmbedding) -> EmbeddingResult:
    """Calls the provider, then records and charges the call; raises LLMError, having
    released the reservation, when the provider refused it or could not be reached."""
    started = time.monotonic()
    metrics.ai_call_started()
    try:
        result = await embed(prepared.route, prepared.request)
    except BaseException as exc:
        await in_thread(admission_release)(admission=prepared.admission)
        error = exc if isinstance(exc, LLMError) else LLMError("upstream_error")
        _measured(prepared, started, outcome=Outcome.FAILED, error_code=error.code)
        if isinstance(exc, LLMError | asyncio.CancelledError):
            raise
        logger.exception("Embedding call %s failed", prepared.admission.id)
        raise error from None
    _measured(prepared, started, outcome=Outcome.COMPLETE, result=result)
    entry = _journal_entry(prepared, result, latency_ms=int((time.monotonic() - started) * 1000))
    try:
        await in_thread(embedding_settle)(entry=entry)
    except Exception:
        # Journaled before the save was tried: the sweeper saves it once PostgreSQL takes it.
        logger.exception("Could not record embedding call %s yet; it is journaled", entry["key"])
        sweeper_ensure()
    return result


def _measured(
    prepared: PreparedEmbedding,
    started: float,
    *,
    outcome: str,
    result: EmbeddingResult | None = None,
    error_code: str = "",
) -> None:
    """Counts the call in the metrics, and logs its line, as a chat turn's."""
    target = result.target if result is not None else prepared.route.primary
    metrics.ai_call_finished(
        user_id=prepared.admission.user_id,
        model=target.name,
        provider=target.provider.name,
        outcome=outcome,
        input_tokens=result.input_tokens if result is not None else 0,
        output_tokens=0,
        seconds=time.monotonic() - started,
        first_token_seconds=None,
        error_code=error_code,
    )


def embedding_settle(*, entry: journal.Entry) -> None:
    """Journals the call's outcome, then writes its usage record and settles its reservation."""
    journal.record(entry)
    outcome_save(entry)
    journal.committed(entry["key"])


def _journal_entry(prepared: PreparedEmbedding, result: EmbeddingResult, *, latency_ms: int) -> journal.Entry:
    """The call as chats.journal keeps a finished turn's outcome: no message, no conversation."""
    return {
        "key": f"embedding:{uuid.uuid4().hex}",
        "phase": journal.FINISHED,
        "message_id": None,
        "conversation_id": None,
        "admission": journal.admission_dump(prepared.admission),
        "target": journal.target_dump(result.target),
        "started_at": time.time() - latency_ms / 1000,
        "kind": CallKind.EMBEDDING.value,
        "text": "",
        "status": Outcome.COMPLETE.value,
        "error_code": "",
        "input_tokens": result.input_tokens,
        "output_tokens": 0,
        "estimated": result.estimated,
        "cached": False,
        "charged": True,
        "latency_ms": latency_ms,
        "ttft_ms": None,
    }


# --- the reply -----------------------------------------------------------------------------------


def _encoded(vector: tuple[float, ...], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return list(vector)


def embedding_body(call: EmbeddingCall, result: EmbeddingResult) -> dict[str, Any]:
    """OpenAI's reply: a list of embeddings, in the inputs' order, and the usage."""
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": _encoded(vector, call.encoding_format)}
            for index, vector in enumerate(result.vectors)
        ],
        "model": call.model,
        "usage": {"prompt_tokens": result.input_tokens, "total_tokens": result.input_tokens},
    }


class PendingEmbedding(Pending):
    """An admitted embedding call, to make and answer."""

    def __init__(self, call: EmbeddingCall, prepared: PreparedEmbedding) -> None:
        super().__init__()
        self.call, self.prepared = call, prepared

    async def answer(self) -> HttpResponseBase:
        run = asyncio.ensure_future(embedding_run(self.prepared))
        try:
            result = await asyncio.shield(run)
        except asyncio.CancelledError:
            _unattend(run)  # the client left: the call goes on, to be recorded as charged
            raise
        except LLMError as error:
            data: dict[str, Any] = {"code": error.code, "message": error.message}
            if error.retry_after is not None:
                data["retry_after"] = error.retry_after
            return _upstream_error_response({"error": data})
        return JsonResponse(embedding_body(self.call, result))

    def abandon(self) -> None:
        """The client left while the call was admitted: its reservation is given back."""
        _unattend(asyncio.ensure_future(in_thread(admission_release)(admission=self.prepared.admission)))


def _unattend(future: asyncio.Future[Any]) -> None:
    _unattended.add(future)
    future.add_done_callback(_forget)


def _forget(future: asyncio.Future[Any]) -> None:
    _unattended.discard(future)
    if not future.cancelled():
        future.exception()  # retrieved: a provider failure nobody waits for is no error to log


class EmbeddingsView(GatewayView):
    @property
    def max_request_bytes(self) -> int:
        return int(settings.MAX_AI_REQUEST_BYTES)  # up to 2048 texts in one request

    @extend_schema(
        operation_id="v1_embeddings",
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="OpenAI's list of embeddings.")},
    )
    def post(self, request: Request) -> HttpResponseBase:
        call = parse_embedding_request(request.data)
        user = request.user
        if not isinstance(user, User):  # the authentication classes let no one else in
            raise NotAuthenticated()
        prepared = embedding_prepare(
            user=user, api_key=request.auth if isinstance(request.auth, ApiKey) else None, call=call
        )
        connection.close()  # the call needs no connection; give this one back to the pool
        return PendingEmbedding(call, prepared)
