"""The OpenAI-compatible gateway: /v1/models and /v1/chat/completions on Nexus keys.

Any OpenAI SDK or app that takes a base URL works unchanged: requests, responses, stream
chunks and errors are OpenAI's formats. Behind them runs the same turn as /chat/send
(rate limit, quota, any provider kind, usage record); nothing else is saved unless the
client sends `X-Nexus-Save: true`, which keeps the exchange as a conversation.

A parameter Nexus cannot honour is refused with a 400 naming it, never ignored: a client
asking for n=2 or for tools must not get a reply that quietly lacks them.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import async_to_sync
from django.db import connection
from django.http import HttpResponseBase, JsonResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey, User
from chats.streams import StreamEvent, hub
from chats.turn import ModelNotAvailable, PreparedTurn, start_turn_async, turn_prepare_gateway
from llm.selectors import models_list_enabled
from llm.types import ChatMessage, ChatRequest, LLMError
from nexus.lib.auth import ai_authentication_classes
from nexus.lib.errors import ApiError, error_body, exception_handler

SAVE_HEADER = "X-Nexus-Save"

# Accepted at their default value (what SDKs and apps send when the user set nothing);
# any other value changes the reply in a way Nexus does not provide.
_NEUTRAL = {
    "n": (1,),
    "logprobs": (False,),
    "presence_penalty": (0, 0.0),
    "frequency_penalty": (0, 0.0),
    "store": (False,),
}
# Accepted and without effect on the reply.
_IGNORED = {"user", "metadata", "parallel_tool_calls", "service_tier"}
_UNSUPPORTED_WHEN_SET = {"tools", "tool_choice", "functions", "function_call"}
_KNOWN = {
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "stream",
    "stream_options",
    "response_format",
    *_NEUTRAL,
    *_IGNORED,
    *_UNSUPPORTED_WHEN_SET,
}
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}

# Nexus's codes as OpenAI's clients know them.
_OPENAI_CODES = {
    "not_authenticated": "invalid_api_key",
    "authentication_failed": "invalid_api_key",
    "token_not_valid": "invalid_api_key",
    "user_inactive": "invalid_api_key",
    "rate_limited": "rate_limit_exceeded",
}


class InvalidParameter(ApiError):
    default_code = "invalid_request_error"


def _invalid(param: str, message: str) -> InvalidParameter:
    return InvalidParameter(message, code="invalid_value", param=param)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _invalid(name, f"{name} must be a number from {low:g} to {high:g}.")
    return float(value)


def _text(value: str, param: str) -> str:
    # PostgreSQL's text cannot hold NUL: refused here as /chat/send refuses it, not a 500 at save.
    if "\x00" in value:
        raise _invalid(param, "Null characters are not allowed.")
    return value


def _content(value: Any, param: str) -> str:
    if isinstance(value, str):
        return _text(value, param)
    if isinstance(value, list):
        texts = []
        for index, part in enumerate(value):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise _invalid(f"{param}[{index}]", "Only text content parts are supported.")
            texts.append(_text(part["text"], f"{param}[{index}].text"))
        return "\n".join(texts)
    raise _invalid(param, "content must be a string or a list of text parts.")


def parse_completion_request(body: Any) -> tuple[str, ChatRequest, bool, bool]:
    """OpenAI's request body as (model, request, stream, include_usage); 400 naming what is wrong."""
    if not isinstance(body, dict):
        raise _invalid("body", "The request body must be a JSON object.")
    for name in body:
        if name not in _KNOWN:
            raise InvalidParameter(
                f"Unrecognized request argument: {name}.", code="unknown_parameter", param=name
            )
    for name, neutral in _NEUTRAL.items():
        if name in body and body[name] is not None and body[name] not in neutral:
            raise InvalidParameter(
                f"{name}={body[name]!r} is not supported by this server.",
                code="unsupported_parameter",
                param=name,
            )
    for name in _UNSUPPORTED_WHEN_SET:
        if body.get(name):
            raise InvalidParameter(
                f"{name} is not supported by this server.", code="unsupported_parameter", param=name
            )
    response_format = body.get("response_format")
    if response_format not in (None, {"type": "text"}):
        raise InvalidParameter(
            "Only response_format {'type': 'text'} is supported.",
            code="unsupported_parameter",
            param="response_format",
        )

    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model", "model is required.")
    _text(model, "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages", "messages must be a non-empty list.")
    system: list[str] = []
    turns: list[ChatMessage] = []
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _invalid(param, "Each message must be an object.")
        role = _ROLES.get(message.get("role", ""))
        if role is None:
            raise _invalid(f"{param}.role", "role must be system, developer, user or assistant.")
        if message.get("tool_calls") or message.get("function_call"):
            raise InvalidParameter("Tool calls are not supported.", code="unsupported_parameter", param=param)
        text = _content(message.get("content"), f"{param}.content")
        if role == "system":
            system.append(text)
        else:
            turns.append(ChatMessage(role=role, content=text))  # type: ignore[arg-type]
    if not turns:
        raise _invalid("messages", "messages must hold at least one user or assistant message.")

    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        name = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        raise _invalid(name, f"{name} must be a positive integer.")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list)
        or len(stop) > 4
        or not all(isinstance(item, str) and item for item in stop)
    ):
        raise _invalid("stop", "stop must be a string or a list of up to 4 strings.")
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise _invalid("stream", "stream must be true or false.")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict) or set(options) - {"include_usage"}:
        raise _invalid("stream_options", "stream_options takes include_usage only.")
    if options and not stream:
        raise _invalid("stream_options", "stream_options is only allowed with stream=true.")

    request = ChatRequest(
        messages=tuple(turns),
        system="\n\n".join(system),
        temperature=_number(body, "temperature", 0, 2),
        top_p=_number(body, "top_p", 0, 1),
        max_tokens=max_tokens,
        stop=tuple(stop or ()),
    )
    return model, request, stream, bool(options.get("include_usage"))


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


def _upstream_error_response(data: dict[str, Any]) -> JsonResponse:
    code, message = data["error"]["code"], data["error"]["message"]
    status = LLMError(code, message).status_code if code != "interrupted" else 502
    return JsonResponse(error_body(status, code=code, message=message), status=status)


# --- rendering -------------------------------------------------------------------------


def _usage(data: dict[str, Any]) -> dict[str, int]:
    usage = data.get("usage") or {}
    prompt, completion = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _finish_reason(data: dict[str, Any]) -> str:
    reason = data.get("finish_reason") or "stop"
    return reason if reason in ("stop", "length", "content_filter") else "stop"


class Completion:
    """One completion's identity, shared by its chunks."""

    def __init__(self, prepared: PreparedTurn, model: str) -> None:
        self.id = "chatcmpl-" + prepared.stream_key.rsplit(":", 1)[-1]
        self.model = model
        self.created = int(time.time())

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            **extra,
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    def usage_chunk(self, data: dict[str, Any]) -> bytes:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": _usage(data),
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    def whole(self, text: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": _finish_reason(data),
                }
            ],
            "usage": _usage(data),
        }


async def _first_events(key: str) -> list[StreamEvent]:
    """The stream's events up to and including the first one after `start`."""
    events: list[StreamEvent] = []
    async for item in hub.subscribe(key):
        events.append(item)
        if item.event != "start":
            break
    return events


async def _all_events(key: str) -> list[StreamEvent]:
    return [item async for item in hub.subscribe(key)]


async def _chunks(
    completion: Completion, key: str, seen: list[StreamEvent], include_usage: bool
) -> AsyncIterator[bytes]:
    async def batches() -> AsyncIterator[list[StreamEvent]]:
        yield seen
        async for batch in hub.subscribe_batches(key, seen[-1].id):
            yield batch

    def encoded(item: StreamEvent) -> bytes:
        if item.event == "delta":
            return completion.chunk({"content": item.data["content"]})
        if item.event == "done":
            usage = completion.usage_chunk(item.data) if include_usage else b""
            return completion.chunk({}, _finish_reason(item.data)) + usage + b"data: [DONE]\n\n"
        if item.event == "error":
            error = item.data["error"]
            body = error_body(502, code=error["code"], message=error["message"])
            return b"data: " + json.dumps(body).encode() + b"\n\n"
        return b""

    yield completion.chunk({"role": "assistant", "content": ""})
    # The events ready at once leave in one write: a busy server sends fewer, larger ones.
    async for batch in batches():
        yield b"".join(encoded(item) for item in batch)


# --- views -----------------------------------------------------------------------------


class GatewayView(APIView):
    authentication_classes = ai_authentication_classes()

    def get_exception_handler(self) -> Any:
        return gateway_exception_handler


class ModelsView(GatewayView):
    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="OpenAI's model list.")})
    def get(self, request: Request) -> Response:
        return Response(
            {
                "object": "list",
                "data": [
                    {
                        "id": model.name,
                        "object": "model",
                        "created": int(model.created_at.timestamp()),
                        "owned_by": model.provider.name,
                    }
                    for model in models_list_enabled()
                ],
            }
        )


class ChatCompletionsView(GatewayView):
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
        model, chat_request, stream, include_usage = parse_completion_request(request.data)
        user = request.user
        if not isinstance(user, User):
            return JsonResponse(error_body(401, code="invalid_api_key"), status=401)
        save = request.headers.get(SAVE_HEADER, "").lower() in ("1", "true", "yes")
        prepared = turn_prepare_gateway(
            user=user,
            api_key=request.auth if isinstance(request.auth, ApiKey) else None,
            model=model,
            request=chat_request,
            save=save,
        )
        connection.close()  # the turn needs no connection; give this one back to the pool
        async_to_sync(start_turn_async)(prepared)
        completion = Completion(prepared, model)
        headers = (
            {"X-Nexus-Conversation-Id": str(prepared.conversation_id)} if prepared.conversation_id else {}
        )
        if not stream:
            events = async_to_sync(_all_events)(prepared.stream_key)
            if events[-1].event == "error":
                return _upstream_error_response(events[-1].data)
            text = "".join(item.data["content"] for item in events if item.event == "delta")
            return JsonResponse(completion.whole(text, events[-1].data), headers=headers)
        seen = async_to_sync(_first_events)(prepared.stream_key)
        if seen[-1].event == "error":
            return _upstream_error_response(seen[-1].data)  # nothing streamed yet: a plain error
        response = StreamingHttpResponse(
            _chunks(completion, prepared.stream_key, seen, include_usage), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        for name, value in headers.items():
            response[name] = value
        return response
