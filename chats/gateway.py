"""The OpenAI-compatible gateway: /v1/models and /v1/chat/completions on Nexus keys.

Any OpenAI SDK or app that takes a base URL works unchanged: requests, responses, stream
chunks (text, reasoning as `reasoning_content`, tool-call deltas) and errors are OpenAI's
formats. Behind them runs the same turn as /chat/send (rate limit, quota, any provider
kind, usage record); nothing else is saved unless the client sends `X-Nexus-Save: true`,
which keeps the exchange as a conversation.

A feature the model lacks (images, tools, structured output) is refused with a 400 naming
it; a parameter its provider kind cannot honour is dropped and named in the
`X-Nexus-Dropped-Params` header, or refused where the model's operator chose so.

The turn belongs to no connection, but a gateway client that goes away stops it: nobody
can resume a stateless reply, so generating the rest would only be charged for nothing.
The DRF view prepares the turn in a thread; the async view around it (chats.answering)
starts it and does the waiting, where Django's cancellation on disconnect reaches it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, HttpResponseBase, JsonResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey, User
from accounts.restrictions import key_model_allowed
from chats import runner
from chats.answering import Pending
from chats.completions import CompletionCall, parse_completion_request
from chats.streams import StreamEvent, hub, interrupted_event
from chats.turn import ModelNotAvailable, PreparedTurn, turn_prepare_gateway, turn_start
from llm.selectors import aliases_enabled, model_enabled_get, models_list_enabled
from llm.types import LLMError
from nexus.lib.auth import ai_authentication_classes
from nexus.lib.errors import ApiError, error_body, exception_handler, retry_after_header

SAVE_HEADER = "X-Nexus-Save"
DROPPED_HEADER = "X-Nexus-Dropped-Params"

# Nexus's codes as OpenAI's clients know them.
_OPENAI_CODES = {
    "not_authenticated": "invalid_api_key",
    "authentication_failed": "invalid_api_key",
    "token_not_valid": "invalid_api_key",
    "user_inactive": "invalid_api_key",
    "rate_limited": "rate_limit_exceeded",
    "upstream_rate_limited": "rate_limit_exceeded",
    # LangChain's and others' history trimming keys on OpenAI's code.
    "context_length": "context_length_exceeded",
}


# --- errors ----------------------------------------------------------------------------


def gateway_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Nexus's error shape is OpenAI's plus `fields`; only some codes read differently."""
    if isinstance(exc, ModelNotAvailable):
        exc = ApiError(exc.message, code="model_not_found", status_code=404, param="model")
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict):
        error = response.data["error"]
        error["code"] = _OPENAI_CODES.get(error["code"], error["code"])
    return response


def _upstream_error_response(data: dict[str, Any]) -> HttpResponse:
    """An upstream failure before anything streamed, with OpenAI's status and code."""
    error = data["error"]
    code, message = error["code"], error["message"]
    response = JsonResponse(
        error_body(upstream_status(code), code=_OPENAI_CODES.get(code, code), message=message),
        status=upstream_status(code),
    )
    return with_retry_after(response, error)


def upstream_status(code: str) -> int:
    """The HTTP status of a turn's error event, by its code."""
    return LLMError(code, "").status_code if code != "interrupted" else 502  # type: ignore[arg-type]


def with_retry_after(response: HttpResponse, error: dict[str, Any]) -> HttpResponse:
    if response.status_code == 429 and error.get("retry_after") is not None:
        response["Retry-After"] = retry_after_header(float(error["retry_after"]))
    return response


class Surface(Protocol):
    """How one API speaks a turn: its stream, its whole reply and its errors.

    Chat Completions (Completion below), the Responses API and Anthropic's Messages API
    each have one; they all wait for the same turn's events (PendingCompletion)."""

    stream: bool

    def opening(self) -> bytes:
        """What the stream starts with, before the turn's first event."""

    def encoded(self, item: StreamEvent) -> bytes:
        """One event of the turn in the stream's format; b"" for an event it does not show."""

    def whole(self, events: list[StreamEvent]) -> dict[str, Any]:
        """The non-streamed reply, from all of the turn's events (the last one is `done`)."""

    def error_response(self, data: dict[str, Any]) -> HttpResponse:
        """The response to a turn that failed before anything streamed (an `error` event's data)."""


# --- rendering -------------------------------------------------------------------------


def _usage(data: dict[str, Any]) -> dict[str, int]:
    usage = data.get("usage") or {}
    prompt, completion = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


_FINISH_REASONS = ("stop", "length", "content_filter", "tool_calls")


def _finish_reasons(data: dict[str, Any], choices: int, legacy: bool) -> list[str]:
    """Each choice's finish reason in OpenAI's words (`function_call` for legacy clients)."""
    by_choice = data.get("finish_reasons") or {}
    reasons = []
    for choice in range(choices):
        reason = by_choice.get(str(choice)) or (data.get("finish_reason") if choice == 0 else None) or "stop"
        reason = reason if reason in _FINISH_REASONS else "stop"
        if legacy and reason == "tool_calls":
            reason = "function_call"
        reasons.append(reason)
    return reasons


@dataclass
class _Choice:
    """One choice of a whole (non-streamed) completion, put together from its events."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    logprobs: list[dict[str, Any]] = field(default_factory=list)

    def add(self, item: StreamEvent) -> None:
        data = item.data
        if item.event == "delta":
            self.text.append(data["content"])
            self.logprobs += data.get("logprobs") or ()
        elif item.event == "reasoning":
            self.reasoning.append(data["content"])
        elif item.event == "tool_call":
            call = self.tool_calls.setdefault(
                data["index"], {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            call["id"] = call["id"] or data.get("id") or ""
            call["function"]["name"] += data.get("name") or ""
            call["function"]["arguments"] += data.get("arguments") or ""


class Completion:
    """One completion's identity and shape, shared by its chunks."""

    def __init__(self, prepared: PreparedTurn, call: CompletionCall) -> None:
        self.id = "chatcmpl-" + prepared.stream_key.rsplit(":", 1)[-1]
        self.model = call.model
        self.created = int(time.time())
        self.choices = call.request.choices
        self.legacy = call.legacy_functions
        self.include_usage = call.include_usage
        self.logprobs = bool(call.request.options.get("logprobs"))
        self.stream = call.stream

    def error_response(self, data: dict[str, Any]) -> HttpResponse:
        return _upstream_error_response(data)

    def _body(self, obj: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
            **extra,
        }

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return (
            b"data: " + json.dumps(self._body("chat.completion.chunk", choices, **extra)).encode() + b"\n\n"
        )

    def opening(self) -> bytes:
        delta = {"role": "assistant", "content": ""}
        return self.chunk(
            [
                {"index": i, "delta": delta, "logprobs": None, "finish_reason": None}
                for i in range(self.choices)
            ]
        )

    def encoded(self, item: StreamEvent) -> bytes:
        """One event of the turn as the chunks OpenAI sends for it."""
        data = item.data
        choice = {"index": data.get("choice", 0), "logprobs": None, "finish_reason": None}
        if item.event == "delta":
            if data.get("logprobs"):
                choice["logprobs"] = {"content": data["logprobs"], "refusal": None}
            return self.chunk([{**choice, "delta": {"content": data["content"]}}])
        if item.event == "reasoning":
            return self.chunk([{**choice, "delta": {"reasoning_content": data["content"]}}])
        if item.event == "tool_call":
            return self.chunk([{**choice, "delta": self._tool_call_delta(data)}])
        if item.event == "done":
            reasons = _finish_reasons(data, self.choices, self.legacy)
            finishes: list[dict[str, Any]] = [
                {"index": i, "delta": {}, "logprobs": None, "finish_reason": reason}
                for i, reason in enumerate(reasons)
            ]
            usage = self.chunk([], usage=_usage(data)) if self.include_usage else b""
            return self.chunk(finishes) + usage + b"data: [DONE]\n\n"
        if item.event == "error":
            error = item.data["error"]
            body = error_body(
                502, code=_OPENAI_CODES.get(error["code"], error["code"]), message=error["message"]
            )
            return b"data: " + json.dumps(body).encode() + b"\n\n"
        return b""

    def _tool_call_delta(self, data: dict[str, Any]) -> dict[str, Any]:
        function: dict[str, Any] = {"arguments": data.get("arguments") or ""}
        if data.get("name"):
            function = {"name": data["name"], **function}
        if self.legacy:
            return {"function_call": function}
        call: dict[str, Any] = {"index": data["index"]}
        if data.get("id"):
            call.update(id=data["id"], type="function")
        call["function"] = function
        return {"tool_calls": [call]}

    def whole(self, events: list[StreamEvent]) -> dict[str, Any]:
        """The non-streamed completion: every choice put together."""
        choices = [_Choice() for _ in range(self.choices)]
        for item in events:
            index = item.data.get("choice", 0)
            if index < self.choices:
                choices[index].add(item)
        end = events[-1].data
        reasons = _finish_reasons(end, self.choices, self.legacy)
        return self._body(
            "chat.completion",
            [self._message(index, choice, reasons[index]) for index, choice in enumerate(choices)],
            usage=_usage(end),
        )

    def _message(self, index: int, choice: _Choice, reason: str) -> dict[str, Any]:
        calls = [choice.tool_calls[key] for key in sorted(choice.tool_calls)]
        text = "".join(choice.text)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text or (None if calls else ""),
            "refusal": None,
        }
        if choice.reasoning:
            message["reasoning_content"] = "".join(choice.reasoning)
        if calls and self.legacy:
            message["function_call"] = calls[0]["function"]
        elif calls:
            message["tool_calls"] = calls
        logprobs = {"content": choice.logprobs, "refusal": None} if self.logprobs else None
        return {"index": index, "message": message, "logprobs": logprobs, "finish_reason": reason}


# --- waiting for the turn --------------------------------------------------------------


def _stop(key: str) -> None:
    """Stops the turn when its client has gone; nobody else can read a gateway reply."""
    if runner.running_here(key):
        runner.stop(key)


async def _first_events(key: str) -> list[StreamEvent]:
    """The stream's events up to and including the first one after `start`."""
    events: list[StreamEvent] = []
    async for item in hub.subscribe(key):
        events.append(item)
        if item.event != "start":
            break
    return events


async def _chunks(surface: Surface, key: str, seen: list[StreamEvent]) -> AsyncIterator[bytes]:
    async def batches() -> AsyncIterator[list[StreamEvent]]:
        yield seen
        async for batch in hub.subscribe_batches(key, seen[-1].id):
            yield batch

    finished = False
    try:
        yield surface.opening()
        # The events ready at once leave in one write: a busy server sends fewer, larger ones.
        async for batch in batches():
            finished = finished or batch[-1].terminal
            yield b"".join(surface.encoded(item) for item in batch)
    finally:
        if not finished:  # the client went away (Django cancels or closes this generator)
            _stop(key)


class PendingCompletion(Pending):
    """A prepared turn, to start, wait for and answer."""

    def __init__(
        self, prepared: PreparedTurn, surface: Surface, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__()
        self.prepared, self.surface = prepared, surface
        self.extra_headers = headers or {}

    def headers_for_client(self) -> dict[str, str]:
        headers = dict(self.extra_headers)
        if self.prepared.conversation_id:
            headers["X-Nexus-Conversation-Id"] = str(self.prepared.conversation_id)
        if self.prepared.dropped_params:
            headers[DROPPED_HEADER] = ", ".join(self.prepared.dropped_params)
        return headers

    async def answer(self) -> HttpResponseBase:
        turn_start(self.prepared)
        return await self.read()

    async def read(self) -> HttpResponseBase:
        """The response from the turn's stream: whole, or its start and a streaming body."""
        key, surface = self.prepared.stream_key, self.surface
        try:
            if not surface.stream:
                events = [item async for item in hub.subscribe(key)]
            else:
                events = await _first_events(key)
        except asyncio.CancelledError:
            _stop(key)
            raise
        if not events or (not surface.stream and not events[-1].terminal):
            # The stream ended without its end (its buffer was lost): the reply did not finish.
            events = [*events, interrupted_event(len(events) + 1, None)]
        if events[-1].event == "error":
            response: HttpResponseBase = surface.error_response(events[-1].data)  # nothing streamed yet
        elif not surface.stream:
            response = JsonResponse(surface.whole(events))
        else:
            response = StreamingHttpResponse(_chunks(surface, key, events), content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
        for name, value in self.headers_for_client().items():
            response[name] = value
        return response

    def abandon(self) -> None:
        # Run and stopped at once, so its reservation and any saved question settle as a
        # stopped turn's do; the stop follows the run's first step (the loop runs in order).
        turn_start(self.prepared)
        asyncio.get_running_loop().call_soon(_stop, self.prepared.stream_key)


# --- views -----------------------------------------------------------------------------


class GatewayView(APIView):
    authentication_classes = ai_authentication_classes()

    def get_exception_handler(self) -> Any:
        return gateway_exception_handler


def _model_entry(model: Any, name: str | None = None) -> dict[str, Any]:
    """OpenAI's model object of a catalog model, or of an alias (`name`) of it."""
    return {
        "id": name or model.name,
        "object": "model",
        "created": int(model.created_at.timestamp()),
        "owned_by": model.provider.name,
    }


class ModelsView(GatewayView):
    @extend_schema(
        operation_id="v1_models_list",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="OpenAI's model list.")},
    )
    def get(self, request: Request) -> Response:
        key = request.auth if isinstance(request.auth, ApiKey) else None
        # Chat and embedding models, and the aliases clients may call them by. A key limited
        # to some models lists those only: a client picks from what it may use.
        entries = [_model_entry(model) for model in models_list_enabled()]
        entries += [_model_entry(alias.model, alias.name) for alias in aliases_enabled()]
        data = sorted(
            (entry for entry in entries if key_model_allowed(key, entry["id"])), key=lambda e: e["id"]
        )
        return Response({"object": "list", "data": data})


class ModelView(GatewayView):
    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="OpenAI's model object.")}
    )
    def get(self, request: Request, model_id: str) -> Response:
        model = model_enabled_get(name=model_id)  # a model, or the model an alias names
        key = request.auth if isinstance(request.auth, ApiKey) else None
        if model is None or not key_model_allowed(key, model_id):
            raise ApiError(
                f"The model {model_id!r} does not exist or is not enabled.",
                code="model_not_found",
                status_code=404,
                param="model",
            )
        return Response(_model_entry(model, model_id))


class ChatCompletionsView(GatewayView):
    @property
    def max_request_bytes(self) -> int:
        return int(settings.MAX_AI_REQUEST_BYTES)  # images and files travel inline

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter(
                SAVE_HEADER,
                bool,
                location=OpenApiParameter.HEADER,
                description="true: keep the exchange as a conversation of the caller.",
            )
        ],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="A chat.completion; with stream=true, an event stream of chat.completion.chunk.",
            )
        },
    )
    def post(self, request: Request) -> HttpResponseBase:
        call = parse_completion_request(request.data)
        save = request.headers.get(SAVE_HEADER, "").lower() in ("1", "true", "yes")
        prepared = gateway_turn_prepare(request, call, save=save)
        return PendingCompletion(prepared, Completion(prepared, call))


def gateway_turn_prepare(request: Request, call: CompletionCall, **options: Any) -> PreparedTurn:
    """Prepares the turn of a parsed gateway call, for the caller of `request`; its Pending
    starts it on the event loop.

    Every surface (Chat Completions, Responses, Messages) prepares its turns here, so all
    share authentication, maintenance mode, admission and the same run; `options` go to
    turn_prepare_gateway (save, continuing a stored conversation)."""
    user = request.user
    if not isinstance(user, User):  # the authentication classes let no one else in
        raise NotAuthenticated()
    prepared = turn_prepare_gateway(
        user=user,
        api_key=request.auth if isinstance(request.auth, ApiKey) else None,
        model=call.model,
        request=call.request,
        needs=call.needs,
        **options,
    )
    connection.close()  # the turn needs no connection; give this one back to the pool
    return prepared
