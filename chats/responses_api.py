"""OpenAI's Responses API on Nexus keys: POST /v1/responses, GET and DELETE /v1/responses/{id}.

The clients that speak it by default (the Vercel AI SDK 5 and later, the OpenAI Agents SDK,
the openai SDK's `responses.create`) work unchanged. A request is read into the same
CompletionCall as Chat Completions (chats.responses_request) and runs the same turn
(chats.gateway.gateway_turn_prepare: authentication, maintenance, admission, budgets, stop on
disconnect); this module only translates the turn's events into the Responses event
sequence and Response object.

Stored responses (`store`, true by default as at OpenAI) are conversations of the caller, the
rows /chat shows: the input items become its messages, each following the one before, and the
reply is the response. A response id names the reply's row, signed with SECRET_KEY so that it
cannot be guessed, and needs no column of its own: `previous_response_id` continues that
conversation from that reply, GET rebuilds the Response from the rows, DELETE removes the
exchange. With `store: false` nothing but the usage is kept.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, HttpResponseBase, JsonResponse
from django.utils.crypto import constant_time_compare, salted_hmac
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from chats import selectors
from chats.gateway import (
    GatewayView,
    PendingCompletion,
    gateway_exception_handler,
    gateway_turn_prepare,
    upstream_status,
    with_retry_after,
)
from chats.models import Message, MessageRole, MessageStatus
from chats.responses_request import ResponsesCall, parse_responses_request
from chats.services import conversation_delete
from chats.streams import StreamEvent
from chats.turn import PreparedTurn
from llm.types import LLM_ERROR_MESSAGES
from nexus.lib.errors import ApiError

# --- response ids ------------------------------------------------------------------------------

_SIGNATURE_LENGTH = 24
_TOKEN = re.compile(r"^resp_([0-9a-f]+)$")


def _signature(pk: int) -> str:
    return salted_hmac("chats.responses_api", str(pk), algorithm="sha256").hexdigest()[:_SIGNATURE_LENGTH]


def response_token(message_id: int) -> str:
    """What names a stored response (its reply's row), in its id and its items' ids."""
    return f"{message_id:x}{_signature(message_id)}"


def response_message_id(response_id: str) -> int | None:
    """The reply row a response id names, or None when it names none (or was not signed here)."""
    match = _TOKEN.match(response_id)
    if match is None or len(match.group(1)) <= _SIGNATURE_LENGTH:
        return None
    token = match.group(1)
    pk = int(token[:-_SIGNATURE_LENGTH], 16)
    if pk > 2**63 - 1 or not constant_time_compare(token[-_SIGNATURE_LENGTH:], _signature(pk)):
        return None
    return pk


def stored_reply_get(*, user: User, response_id: str, param: str | None = None) -> Message:
    """The caller's stored reply that `response_id` names; a 404 in OpenAI's shape otherwise."""
    pk = response_message_id(response_id)
    reply: Message | None = None
    if pk is not None:
        try:
            reply = selectors.message_get(user=user, message_id=pk)
        except NotFound:
            reply = None
    if reply is None or reply.role != MessageRole.ASSISTANT:
        what = "Previous response" if param == "previous_response_id" else "Response"
        raise ApiError(
            f"{what} with id {response_id!r} not found.",
            code="previous_response_not_found" if param == "previous_response_id" else "not_found",
            status_code=404,
            param=param,
        )
    return reply


# --- rendering ---------------------------------------------------------------------------------

_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _usage(data: dict[str, Any] | None) -> dict[str, Any]:
    usage = (data or {}).get("usage") or {}
    input_tokens, output_tokens = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _ending(finish_reason: str) -> tuple[str, dict[str, Any] | None]:
    """The response's status and incomplete_details, by the turn's finish reason."""
    if finish_reason in _INCOMPLETE_REASONS:
        return "incomplete", {"reason": _INCOMPLETE_REASONS[finish_reason]}
    if finish_reason == "stopped":
        return "incomplete", None
    return "completed", None


def _failure(code: str) -> dict[str, Any]:
    """A turn's error code as the Response's `error` (OpenAI's codes for it are few)."""
    return {
        "code": "rate_limit_exceeded" if code == "upstream_rate_limited" else "server_error",
        "message": LLM_ERROR_MESSAGES.get(code, LLM_ERROR_MESSAGES["upstream_error"]),
    }


class _Output:
    """The output items of a response, put together from the turn's events, and the stream
    events (without their sequence numbers) that tell a client of each step."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.items: list[dict[str, Any]] = []  # as they stand, by output_index
        self.open: list[int] = []  # the output indexes still being written
        self.texts: dict[int, list[str]] = {}
        self.calls: dict[int, int] = {}  # the turn's tool call index -> output index

    def add(self, item: StreamEvent) -> list[dict[str, Any]]:
        data = item.data
        if data.get("choice", 0):
            return []  # a response has one reply
        if item.event == "reasoning":
            return self._written("reasoning", data["content"])
        if item.event == "delta":
            return self._written("message", data["content"])
        if item.event == "tool_call":
            return self._tool_call(data)
        return []

    def finish(self, status: str) -> list[dict[str, Any]]:
        """Closes what is open; a reply with no output at all still has its (empty) message."""
        events = [] if self.items else self._start(self._message())
        return events + self._close(status=status)

    def _id(self, prefix: str, kind: str) -> str:
        """The item's id: the response's token, and a number from the second item of its kind."""
        count = sum(1 for item in self.items if item["type"] == kind)
        return f"{prefix}_{self.token}" + (f"_{count}" if count else "")

    def _message(self) -> dict[str, Any]:
        return {
            "type": "message",
            "id": self._id("msg", "message"),
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }

    def _start(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        index = len(self.items)
        self.items.append(item)
        self.open.append(index)
        self.texts[index] = []
        events: list[dict[str, Any]] = [
            {"type": "response.output_item.added", "output_index": index, "item": dict(item)}
        ]
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            part = {"type": "output_text", "text": "", "annotations": []}
            events.append({"type": "response.content_part.added", **where, "content_index": 0, "part": part})
        elif item["type"] == "reasoning":
            part = {"type": "summary_text", "text": ""}
            events.append(
                {"type": "response.reasoning_summary_part.added", **where, "summary_index": 0, "part": part}
            )
        return events

    def _written(self, kind: str, text: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        current = self.open[-1] if self.open else None
        if current is None or self.items[current]["type"] != kind:
            events += self._close(status="completed")
            item = (
                self._message()
                if kind == "message"
                else {"type": "reasoning", "id": self._id("rs", "reasoning"), "summary": []}
            )
            events += self._start(item)
            current = len(self.items) - 1
        self.texts[current].append(text)
        where = {"item_id": self.items[current]["id"], "output_index": current}
        if kind == "message":
            events.append(
                {
                    "type": "response.output_text.delta",
                    **where,
                    "content_index": 0,
                    "delta": text,
                    "logprobs": [],
                }
            )
        else:
            events.append(
                {"type": "response.reasoning_summary_text.delta", **where, "summary_index": 0, "delta": text}
            )
        return events

    def _tool_call(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        index = self.calls.get(data["index"])
        if index is None:
            # Text and reasoning end where a call begins; parallel calls may still be written.
            events += self._close(status="completed", kinds=("message", "reasoning"))
            call_id = data.get("id") or f"call_{self.token}_{data['index']}"
            item = {
                "type": "function_call",
                "id": f"fc_{self.token}_{data['index']}",
                "call_id": call_id,
                "name": data.get("name") or "",
                "arguments": "",
                "status": "in_progress",
            }
            events += self._start(item)
            index = self.calls[data["index"]] = len(self.items) - 1
        elif data.get("name"):
            self.items[index]["name"] += data["name"]
        if data.get("arguments"):
            self.texts[index].append(data["arguments"])
            events.append(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": self.items[index]["id"],
                    "output_index": index,
                    "delta": data["arguments"],
                }
            )
        return events

    def _close(
        self, *, status: str, kinds: tuple[str, ...] = ("message", "reasoning", "function_call")
    ) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for index in [index for index in self.open if self.items[index]["type"] in kinds]:
            self.open.remove(index)
            item, text = self.items[index], "".join(self.texts[index])
            where = {"item_id": item["id"], "output_index": index}
            if item["type"] == "message":
                part = {"type": "output_text", "text": text, "annotations": []}
                item.update(status=status, content=[part])
                events += [
                    {
                        "type": "response.output_text.done",
                        **where,
                        "content_index": 0,
                        "text": text,
                        "logprobs": [],
                    },
                    {"type": "response.content_part.done", **where, "content_index": 0, "part": part},
                ]
            elif item["type"] == "reasoning":
                part = {"type": "summary_text", "text": text}
                item.update(summary=[part])
                events += [
                    {
                        "type": "response.reasoning_summary_text.done",
                        **where,
                        "summary_index": 0,
                        "text": text,
                    },
                    {
                        "type": "response.reasoning_summary_part.done",
                        **where,
                        "summary_index": 0,
                        "part": part,
                    },
                ]
            else:
                item.update(arguments=text, status="completed" if status == "completed" else "incomplete")
                events.append(
                    {
                        "type": "response.function_call_arguments.done",
                        **where,
                        "name": item["name"],
                        "arguments": text,
                    }
                )
            events.append({"type": "response.output_item.done", "output_index": index, "item": dict(item)})
        return events


class ResponsesSurface:
    """How the Responses API speaks a turn (chats.gateway.Surface)."""

    def __init__(self, prepared: PreparedTurn, parsed: ResponsesCall) -> None:
        if prepared.assistant_message_id is not None:
            token = response_token(prepared.assistant_message_id)
        else:
            token = prepared.stream_key.rsplit(":", 1)[-1]
        self.id = f"resp_{token}"
        self.model = parsed.call.model
        self.created_at = int(time.time())
        self.echo = dict(parsed.echo or {})
        self.stream = parsed.call.stream
        self.output = _Output(token)
        self.sequence = 0

    def response(
        self,
        status: str,
        *,
        usage: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        incomplete: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        finished = [item for index, item in enumerate(self.output.items) if index not in self.output.open]
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "model": self.model,
            "output": finished if status != "in_progress" else [],
            "usage": usage,
            "error": error,
            "incomplete_details": incomplete,
            **self.echo,
        }

    def _event(self, event: dict[str, Any]) -> bytes:
        data = {"type": event["type"], "sequence_number": self.sequence, **event}
        self.sequence += 1
        return f"event: {event['type']}\ndata: {json.dumps(data)}\n\n".encode()

    def opening(self) -> bytes:
        response = self.response("in_progress")
        return self._event({"type": "response.created", "response": response}) + self._event(
            {"type": "response.in_progress", "response": response}
        )

    def encoded(self, item: StreamEvent) -> bytes:
        if item.event == "done":
            status, incomplete = _ending(item.data.get("finish_reason") or "stop")
            events = self.output.finish("completed" if status == "completed" else "incomplete")
            final = self.response(status, usage=_usage(item.data), incomplete=incomplete)
            events.append(
                {
                    "type": f"response.{'completed' if status == 'completed' else 'incomplete'}",
                    "response": final,
                }
            )
        elif item.event == "error":
            events = self.output.finish("incomplete")
            error = item.data["error"]
            failure = {**_failure(error["code"]), "message": error["message"]}
            events.append(
                {
                    "type": "response.failed",
                    "response": self.response("failed", usage=_usage(item.data), error=failure),
                }
            )
        else:
            events = self.output.add(item)
        return b"".join(self._event(event) for event in events)

    def whole(self, events: list[StreamEvent]) -> dict[str, Any]:
        for item in events:
            self.output.add(item)
        end = events[-1].data
        status, incomplete = _ending(end.get("finish_reason") or "stop")
        self.output.finish("completed" if status == "completed" else "incomplete")
        return self.response(status, usage=_usage(end), incomplete=incomplete)

    def error_response(self, data: dict[str, Any]) -> HttpResponse:
        """A turn that failed before any output: OpenAI's error shape, as Chat Completions has it."""
        error = data["error"]
        status = upstream_status(error["code"])
        exc = ApiError(error["message"], code=error["code"], status_code=status)
        rendered = gateway_exception_handler(exc, {})
        body = rendered.data if rendered is not None else {}
        return with_retry_after(JsonResponse(body, status=status), error)


# --- stored responses ----------------------------------------------------------------------------


_STORED_STATUSES: dict[str, str] = {
    MessageStatus.STREAMING: "in_progress",
    MessageStatus.COMPLETE: "completed",
    MessageStatus.FAILED: "failed",
    MessageStatus.STOPPED: "incomplete",
}


def _is_reply(row: Mapping[str, Any]) -> bool:
    """A turn's reply (it has the model that wrote it), not an assistant message a client sent."""
    return row["role"] == MessageRole.ASSISTANT and bool(row["model"])


def _exchange(reply: Message) -> tuple[list[int], int | None]:
    """The messages of the exchange `reply` ends (the reply and the input before it, back to
    the reply it continued), and that reply, if any."""
    own, wanted = [reply.pk], reply.parent_id
    rows = (
        Message.objects.filter(conversation_id=reply.conversation_id, pk__lt=reply.pk)
        .order_by("-id")
        .values("id", "role", "model", "parent_id")
        .iterator(chunk_size=64)
    )
    for row in rows:  # a parent is older than its child: its row comes later, newest first
        if wanted is None:
            break
        if row["id"] != wanted:
            continue
        if _is_reply(row):
            break
        own.append(row["id"])
        wanted = row["parent_id"]
    return own, wanted


def stored_response(reply: Message) -> dict[str, Any]:
    """The Response object of a stored reply, rebuilt from its rows."""
    token = response_token(reply.pk)
    output = _Output(token)
    if reply.reasoning:
        output.add(StreamEvent(0, "reasoning", {"content": reply.reasoning}))
    if reply.content:
        output.add(StreamEvent(0, "delta", {"content": reply.content}))
    for index, call in enumerate(reply.tool_calls or ()):
        output.add(StreamEvent(0, "tool_call", {"index": index, **call}))
    status = _STORED_STATUSES.get(reply.status, "completed")
    if status != "in_progress":
        output.finish("completed" if status == "completed" else "incomplete")
    _, previous = _exchange(reply)
    usage = {"usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}}
    return {
        "id": f"resp_{token}",
        "object": "response",
        "created_at": int(reply.created_at.timestamp()),
        "status": status,
        "completed_at": None,
        "model": reply.model,
        "output": output.items if status != "in_progress" else [],
        "usage": _usage(usage) if status != "in_progress" else None,
        "error": _failure(reply.error_code) if status == "failed" else None,
        "incomplete_details": None,
        "instructions": reply.conversation.system_prompt or None,
        "max_output_tokens": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "previous_response_id": f"resp_{response_token(previous)}" if previous is not None else None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": None,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "background": False,
    }


@transaction.atomic
def response_delete(*, reply: Message) -> None:
    """Deletes the exchange a stored reply ends; a response continued from it then follows
    what this one followed. The conversation goes too when nothing is left of it."""
    if reply.status == MessageStatus.STREAMING:
        raise ApiError(
            "This response is still being written; it can be deleted once it ends.",
            code="turn_in_progress",
            status_code=409,
        )
    own, previous = _exchange(reply)
    Message.objects.filter(parent_id__in=own).exclude(pk__in=own).update(parent_id=previous)
    Message.objects.filter(pk__in=own).delete()
    conversation = reply.conversation
    if not conversation.messages.exists():
        conversation_delete(conversation=conversation)


# --- views ----------------------------------------------------------------------------------------


def _user(request: Request) -> User:
    if not isinstance(request.user, User):  # the authentication classes let no one else in
        raise NotAuthenticated()
    return request.user


class ResponsesView(GatewayView):
    @property
    def max_request_bytes(self) -> int:
        return int(settings.MAX_AI_REQUEST_BYTES)  # images and files travel inline

    @extend_schema(
        operation_id="v1_responses_create",
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="A Response object; with stream=true, an event stream of the Responses events.",
            )
        },
    )
    def post(self, request: Request) -> HttpResponseBase:
        parsed = parse_responses_request(request.data)
        previous = None
        if parsed.previous_response_id is not None:
            previous = stored_reply_get(
                user=_user(request), response_id=parsed.previous_response_id, param="previous_response_id"
            )
        prepared = gateway_turn_prepare(request, parsed.call, save=parsed.store, previous=previous)
        return PendingCompletion(prepared, ResponsesSurface(prepared, parsed))


class ResponseView(GatewayView):
    @extend_schema(
        operation_id="v1_responses_retrieve",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The stored Response object.")},
    )
    def get(self, request: Request, response_id: str) -> Response:
        reply = stored_reply_get(user=_user(request), response_id=response_id)
        return Response(stored_response(reply))

    @extend_schema(
        operation_id="v1_responses_destroy",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="{id, object, deleted: true}.")},
    )
    def delete(self, request: Request, response_id: str) -> Response:
        reply = stored_reply_get(user=_user(request), response_id=response_id)
        response_delete(reply=reply)
        return Response({"id": response_id, "object": "response", "deleted": True})
