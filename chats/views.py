"""HTTP surface of chats: conversations, messages, templates, sharing, and the SSE turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import async_to_sync
from django.db import connection
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey, User
from chats import selectors, services
from chats.models import Conversation, Message, Template
from chats.recovery import message_events
from chats.serializers import (
    ConversationSerializer,
    HistorySerializer,
    MessageSerializer,
    ParametersSerializer,
    SharedConversationSerializer,
    TemplateSerializer,
    history_representation,
)
from chats.streams import StreamEvent, hub
from chats.turn import TurnSpec, start_turn_async, stop_turn, turn_prepare
from nexus.lib.auth import ai_authentication_classes


def _user(request: Request) -> User:
    if not isinstance(request.user, User):
        raise NotAuthenticated()
    return request.user


def _api_key(request: Request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


class ChatView(APIView):
    """Chat endpoints take a JWT or an API key."""

    authentication_classes = ai_authentication_classes()


# --- the turn over SSE -------------------------------------------------------------------

SSE_DESCRIPTION = (
    "`text/event-stream`: `start` {conversation_id, message_id, model}, `reasoning` {content}... "
    "(reasoning models, before or between the text), `delta` {content}..., then "
    "`done` {message_id, finish_reason, usage} or `error` {error: {code, message}}; every event has an id."
)
# One event of the stream, as OpenAPI 3.2 tools read text/event-stream: its fields, as text.
SseEvent = inline_serializer(
    "SseEvent",
    {
        "id": serializers.CharField(help_text="The event's number, for Last-Event-ID."),
        "event": serializers.ChoiceField(choices=["start", "reasoning", "delta", "done", "error"]),
        "data": serializers.CharField(help_text="The event's JSON object."),
    },
)
SSE_RESPONSE = {(200, "text/event-stream"): OpenApiResponse(SseEvent, description=SSE_DESCRIPTION)}


def sse_response(batches: AsyncIterator[list[StreamEvent]]) -> StreamingHttpResponse:
    async def encoded() -> AsyncIterator[bytes]:
        # The events ready at once leave in one write: a busy server sends fewer, larger ones.
        async for batch in batches:
            yield b"".join(item.as_sse() for item in batch)

    response = StreamingHttpResponse(encoded(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events on as they come
    return response


def start_and_stream(prepared: Any) -> StreamingHttpResponse:
    # The run needs no connection: give this request's back to the pool before streaming.
    connection.close()
    async_to_sync(start_turn_async)(prepared)
    return sse_response(hub.subscribe_batches(prepared.stream_key))


class SendInput(serializers.Serializer[dict[str, Any]]):
    message = serializers.CharField()
    conversation_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    model = serializers.CharField(required=False, allow_blank=True, max_length=128)
    template_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    system_prompt = serializers.CharField(required=False, allow_blank=True, max_length=100_000)
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    max_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1_000_000)


class SendView(ChatView):
    @extend_schema(
        request=SendInput,
        responses=SSE_RESPONSE,
    )
    def post(self, request: Request) -> StreamingHttpResponse:
        serializer = SendInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        prepared = turn_prepare(
            user=_user(request), api_key=_api_key(request), spec=TurnSpec(**serializer.validated_data)
        )
        return start_and_stream(prepared)


class RegenerateView(ChatView):
    @extend_schema(
        request=None,
        responses=SSE_RESPONSE,
    )
    def post(self, request: Request, message_id: int) -> StreamingHttpResponse:
        message = selectors.message_get(user=_user(request), message_id=message_id)
        prepared = turn_prepare(
            user=_user(request), api_key=_api_key(request), spec=TurnSpec(), regenerate=message
        )
        return start_and_stream(prepared)


# --- history and conversations ---------------------------------------------------------


class HistoryView(ChatView, generics.ListAPIView[Conversation]):
    serializer_class = HistorySerializer  # the shape; pages are rendered from rows

    def get_queryset(self) -> QuerySet[Conversation, dict[str, Any]]:  # type: ignore[override]
        return selectors.history_list(user=_user(self.request))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        conversations = list(self.paginate_queryset(self.get_queryset()) or [])
        messages = selectors.history_messages(conversation_ids=[row["id"] for row in conversations])
        return self.get_paginated_response(history_representation(conversations, messages))


class ConversationInput(serializers.Serializer[dict[str, Any]]):
    title = serializers.CharField(required=False, allow_blank=True, max_length=200)
    model = serializers.CharField(required=False, allow_blank=True, max_length=128)
    template_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    system_prompt = serializers.CharField(required=False, allow_blank=True, max_length=100_000)
    parameters = ParametersSerializer(required=False)
    pinned = serializers.BooleanField(required=False)
    archived = serializers.BooleanField(required=False)


class ConversationListView(ChatView, generics.ListAPIView[Conversation]):
    serializer_class = ConversationSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Search titles and message text."),
            OpenApiParameter("archived", bool, description="Only archived (true) or active (false) ones."),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Conversation]:
        params = self.request.query_params
        archived = params.get("archived")
        if archived not in (None, "true", "false"):
            raise serializers.ValidationError({"archived": ["Use true or false."]})
        if "\x00" in params.get("q", ""):  # PostgreSQL's text cannot hold it: a 500 otherwise
            raise serializers.ValidationError({"q": ["Null characters are not allowed."]})
        return selectors.conversation_list(
            user=_user(self.request),
            query=params.get("q", "").strip()[:200],
            archived=None if archived is None else archived == "true",
        )

    @extend_schema(request=ConversationInput, responses={201: ConversationSerializer})
    def post(self, request: Request) -> Response:
        serializer = ConversationInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        template_id = data.pop("template_id", None)
        template = (
            selectors.template_get(user=_user(request), template_id=template_id) if template_id else None
        )
        data.pop("pinned", None), data.pop("archived", None)
        conversation = services.conversation_create(user=_user(request), template=template, **data)
        return Response(ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)


class ConversationDetailView(ChatView):
    @extend_schema(responses=ConversationSerializer)
    def get(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(user=_user(request), conversation_id=conversation_id)
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(request=ConversationInput, responses=ConversationSerializer)
    def patch(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(user=_user(request), conversation_id=conversation_id)
        serializer = ConversationInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        changes.pop("template_id", None)
        conversation = services.conversation_update(conversation=conversation, **changes)
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(user=_user(request), conversation_id=conversation_id)
        services.conversation_delete(conversation=conversation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConversationMessagesView(ChatView, generics.ListAPIView[Message]):
    serializer_class = MessageSerializer

    def get_queryset(self) -> QuerySet[Message]:
        conversation = selectors.conversation_get(
            user=_user(self.request), conversation_id=self.kwargs["conversation_id"]
        )
        return selectors.message_list(conversation=conversation)


ShareOutput = inline_serializer(
    "ShareOutput", {"token": serializers.CharField(), "url": serializers.CharField()}
)


class ConversationShareView(ChatView):
    @extend_schema(request=None, responses={201: ShareOutput})
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(user=_user(request), conversation_id=conversation_id)
        token = services.conversation_share(conversation=conversation)
        url = request.build_absolute_uri(f"/chat/shared/{token}")
        return Response({"token": token, "url": url}, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(user=_user(request), conversation_id=conversation_id)
        services.conversation_unshare(conversation=conversation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SharedConversationView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(responses=SharedConversationSerializer)
    def get(self, request: Request, token: str) -> Response:
        conversation = selectors.shared_conversation_get(token=token)
        return Response(SharedConversationSerializer(conversation).data)


# --- messages --------------------------------------------------------------------------


class MessageEditInput(serializers.Serializer[dict[str, Any]]):
    content = serializers.CharField()


class MessageDetailView(ChatView):
    @extend_schema(request=MessageEditInput, responses=MessageSerializer)
    def patch(self, request: Request, message_id: int) -> Response:
        message = selectors.message_get(user=_user(request), message_id=message_id)
        serializer = MessageEditInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = services.message_edit(message=message, content=serializer.validated_data["content"])
        return Response(MessageSerializer(message).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, message_id: int) -> Response:
        message = selectors.message_get(user=_user(request), message_id=message_id)
        services.message_delete(message=message)
        return Response(status=status.HTTP_204_NO_CONTENT)


def last_event_id(request: Request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.query_params.get("last_event_id") or "0"
    # ASCII digits only: str.isdigit() also takes "²", which int() then refuses.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise serializers.ValidationError({"last_event_id": ["Use the id of the last event you received."]})
    return int(raw)


class MessageStreamView(ChatView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "last_event_id", int, description="Or the Last-Event-ID header: resume after it."
            ),
        ],
        responses=SSE_RESPONSE,
    )
    def get(self, request: Request, message_id: int) -> StreamingHttpResponse:
        """The events of a reply after Last-Event-ID, live until it ends, from any server process."""
        message = selectors.message_get(user=_user(request), message_id=message_id)
        after = last_event_id(request)
        connection.close()
        return sse_response(message_events(message, after))


class StopView(ChatView):
    @extend_schema(request=None, responses={202: None})
    def post(self, request: Request, message_id: int) -> Response:
        """Stops the turn writing this reply, from any server process; the text so far is kept."""
        stop_turn(user=_user(request), message_id=message_id)
        return Response(status=status.HTTP_202_ACCEPTED)


# --- templates -------------------------------------------------------------------------


class TemplateInput(serializers.Serializer[dict[str, Any]]):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=500)
    system_prompt = serializers.CharField(required=False, allow_blank=True, max_length=100_000)
    model = serializers.CharField(required=False, allow_blank=True, max_length=128)
    parameters = ParametersSerializer(required=False)
    is_public = serializers.BooleanField(required=False)
    is_global = serializers.BooleanField(required=False, help_text="Admins only: a template for everyone.")


class TemplateListView(ChatView, generics.ListAPIView[Template]):
    serializer_class = TemplateSerializer

    def get_queryset(self) -> QuerySet[Template]:
        return selectors.template_list(user=_user(self.request))

    @extend_schema(request=TemplateInput, responses={201: TemplateSerializer})
    def post(self, request: Request) -> Response:
        serializer = TemplateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        template = services.template_create(user=_user(request), **serializer.validated_data)
        return Response(
            TemplateSerializer(template, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


class TemplateDetailView(ChatView):
    @extend_schema(responses=TemplateSerializer)
    def get(self, request: Request, template_id: int) -> Response:
        template = selectors.template_get(user=_user(request), template_id=template_id)
        return Response(TemplateSerializer(template, context={"request": request}).data)

    @extend_schema(request=TemplateInput, responses=TemplateSerializer)
    def patch(self, request: Request, template_id: int) -> Response:
        template = selectors.template_get(user=_user(request), template_id=template_id)
        serializer = TemplateInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        changes.pop("is_global", None)
        template = services.template_update(user=_user(request), template=template, **changes)
        return Response(TemplateSerializer(template, context={"request": request}).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, template_id: int) -> Response:
        template = selectors.template_get(user=_user(request), template_id=template_id)
        services.template_delete(user=_user(request), template=template)
        return Response(status=status.HTTP_204_NO_CONTENT)
