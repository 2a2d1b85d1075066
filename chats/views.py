"""HTTP surface of chats: conversations, messages, templates, sharing, and the SSE turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey, User
from chats import branches, files, selectors, services
from chats.answering import Pending
from chats.models import ChatFile, Conversation, Message, Template
from chats.recovery import message_events
from chats.serializers import (
    ChatFileSerializer,
    ConversationSerializer,
    HistorySerializer,
    MessageSerializer,
    ParametersSerializer,
    SharedConversationSerializer,
    TemplateSerializer,
    history_representation,
)
from chats.streams import StreamEvent, hub
from chats.turn import PreparedTurn, TurnSpec, turn_prepare, turn_start, turn_stop
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


class PendingStream(Pending):
    """A prepared turn, started on the event loop and streamed over SSE (chats.answering)."""

    def __init__(self, prepared: PreparedTurn) -> None:
        super().__init__()
        self.prepared = prepared

    async def answer(self) -> StreamingHttpResponse:
        turn_start(self.prepared)
        return sse_response(hub.subscribe_batches(self.prepared.stream_key))

    def abandon(self) -> None:
        turn_start(self.prepared)  # a saved reply is written on, to be read from history or resumed


def start_and_stream(prepared: PreparedTurn) -> PendingStream:
    # The run needs no connection: give this request's back to the pool before streaming.
    connection.close()
    return PendingStream(prepared)


def attachments_input(**kwargs: Any) -> serializers.ListField:
    """Ids of the caller's files (POST /chat/files) a message attaches. The limit is the setting
    MAX_ATTACHMENTS (chats.files); this only bounds the list read."""
    child = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    return serializers.ListField(child=child, max_length=100, **kwargs)


class SendInput(serializers.Serializer[dict[str, Any]]):
    message = serializers.CharField()
    conversation_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    model = serializers.CharField(required=False, allow_blank=True, max_length=128)
    template_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    system_prompt = serializers.CharField(required=False, allow_blank=True, max_length=100_000)
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    max_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1_000_000)
    attachments = attachments_input(required=False)


class SendView(ChatView):
    @extend_schema(
        request=SendInput,
        responses=SSE_RESPONSE,
    )
    def post(self, request: Request) -> PendingStream:
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
    def post(self, request: Request, message_id: int) -> PendingStream:
        message = selectors.message_get(user=_user(request), message_id=message_id)
        prepared = turn_prepare(
            user=_user(request), api_key=_api_key(request), spec=TurnSpec(), regenerate=message
        )
        return start_and_stream(prepared)


# --- history and conversations ---------------------------------------------------------


class HistoryView(ChatView, generics.ListAPIView[Conversation]):
    serializer_class = HistorySerializer  # the shape; pages are rendered from rows

    def get_queryset(self) -> QuerySet[Conversation, dict[str, Any]]:  # type: ignore[override]
        return files.conversations_with_attachments(selectors.history_list(user=_user(self.request)))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        conversations = list(self.paginate_queryset(self.get_queryset()) or [])
        leaves = {row["id"]: row.pop("current_leaf_id") for row in conversations}
        with_files = [row["id"] for row in conversations if row.pop("has_attachments")]
        messages = selectors.history_messages(conversation_ids=list(leaves), leaves=leaves)
        # The attachments of the conversations that have any, in one more query (none if none has).
        attached = files.attachment_rows(
            message_ids=[message["id"] for pk in with_files for message in messages.get(pk, [])]
        )
        for entries in messages.values():
            for message in entries:
                message["attachments"] = attached.get(message["id"], [])
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


def _all_branches(request: Request) -> bool:
    value = request.query_params.get("all", "false")
    if value not in ("true", "false"):
        raise serializers.ValidationError({"all": ["Use true or false."]})
    return value == "true"


class ConversationMessagesView(ChatView, generics.ListAPIView[Message]):
    """The current branch, root to leaf; with `?all=true` every message, in the order written."""

    serializer_class = MessageSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "all", bool, description="Every branch's messages (true), not only the current one."
            )
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Message]:
        conversation = selectors.conversation_get(
            user=_user(self.request), conversation_id=self.kwargs["conversation_id"]
        )
        messages = selectors.message_list(conversation=conversation, all_branches=_all_branches(self.request))
        return files.with_attachment_flag(messages)

    def paginate_queryset(self, queryset: QuerySet[Message]) -> list[Message] | None:  # type: ignore[override]
        page = super().paginate_queryset(queryset)
        files.prefetch_attachments(page or [])
        return page


class MessageSelectView(ChatView, generics.GenericAPIView[Message]):
    """Makes the branch through a message current, and answers that branch, root to leaf,
    paginated as GET /chat/conversations/{id}/messages is."""

    serializer_class = MessageSerializer
    queryset = Message.objects.none()  # the shape only: the messages are the caller's branch

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "SelectedBranch",
            {
                "count": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": MessageSerializer(many=True),
            },
        ),
    )
    def post(self, request: Request, message_id: int) -> Response:
        message = selectors.message_get(user=_user(request), message_id=message_id)
        conversation = branches.message_select(message=message)
        page = self.paginate_queryset(
            files.with_attachment_flag(selectors.message_list(conversation=conversation))
        )
        files.prefetch_attachments(page or [])
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


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
    attachments = attachments_input(required=False, help_text="Omitted: the edited message's files.")


class MessageDetailView(ChatView):
    @extend_schema(
        request=MessageEditInput,
        responses=SSE_RESPONSE,
        description="Edits a user message: the new text is saved as a sibling of it (nothing is "
        "deleted) and answered, streamed as POST /chat/send streams; `start` names the new "
        "message as `parent_id`.",
    )
    def patch(self, request: Request, message_id: int) -> PendingStream:
        message = selectors.message_get(user=_user(request), message_id=message_id)
        serializer = MessageEditInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        prepared = turn_prepare(
            user=_user(request),
            api_key=_api_key(request),
            spec=TurnSpec(
                message=serializer.validated_data["content"],
                attachments=serializer.validated_data.get("attachments"),
            ),
            edit=message,
        )
        return start_and_stream(prepared)

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
        turn_stop(user=_user(request), message_id=message_id)
        return Response(status=status.HTTP_202_ACCEPTED)


# --- files -----------------------------------------------------------------------------


class FileUploadInput(serializers.Serializer[dict[str, Any]]):
    file = serializers.FileField(max_length=10_000)


def _content_length(request: Request) -> int:
    raw = request.META.get("CONTENT_LENGTH") or "0"
    return int(raw) if raw.isascii() and raw.isdigit() else 0


def file_response(chat_file: ChatFile) -> StreamingHttpResponse:
    """The stored bytes as a download, read in a worker thread a chunk at a time."""
    chunks = files.file_chunks(chat_file=chat_file)

    async def streamed() -> AsyncIterator[bytes]:
        read = sync_to_async(lambda: next(chunks, b""), thread_sensitive=False)
        try:
            while chunk := await read():
                yield chunk
        finally:
            await sync_to_async(chunks.close, thread_sensitive=False)()

    response = StreamingHttpResponse(streamed(), content_type=chat_file.content_type)
    response["Content-Length"] = str(chat_file.size)
    response["Content-Disposition"] = (
        content_disposition_header(as_attachment=True, filename=chat_file.name) or "attachment"
    )
    response["Cache-Control"] = "private, no-cache"
    return response


FILE_CONTENT = {
    (200, "application/octet-stream"): OpenApiResponse(
        OpenApiTypes.BINARY, description="The file's bytes, with its own content type, as an attachment."
    )
}


class FileListView(ChatView, generics.ListAPIView[ChatFile]):
    """The caller's files, newest first; POST uploads one (multipart, field `file`)."""

    serializer_class = ChatFileSerializer
    parser_classes = (MultiPartParser,)

    def get_queryset(self) -> QuerySet[ChatFile]:
        return files.file_list(user=_user(self.request))

    @extend_schema(request={"multipart/form-data": FileUploadInput}, responses={201: ChatFileSerializer})
    def post(self, request: Request) -> Response:
        # Before the body is parsed: a file over the limit is refused without being read.
        files.upload_size_check(content_length=_content_length(request))
        serializer = FileUploadInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        chat_file = files.file_create(user=_user(request), upload=serializer.validated_data["file"])
        return Response(ChatFileSerializer(chat_file).data, status=status.HTTP_201_CREATED)


class FileDetailView(ChatView):
    @extend_schema(
        parameters=[
            OpenApiParameter("download", bool, description="The file's bytes (true), not its metadata.")
        ],
        responses={(200, "application/json"): ChatFileSerializer, **FILE_CONTENT},
    )
    def get(self, request: Request, file_id: int) -> Response | StreamingHttpResponse:
        chat_file = files.file_get(user=_user(request), file_id=file_id)
        download = request.query_params.get("download", "false")
        if download not in ("true", "false", "1", "0"):
            raise serializers.ValidationError({"download": ["Use true or false."]})
        if download in ("true", "1"):
            return file_response(chat_file)
        return Response(ChatFileSerializer(chat_file).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, file_id: int) -> Response:
        files.file_delete(chat_file=files.file_get(user=_user(request), file_id=file_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class FileContentView(ChatView):
    @extend_schema(responses=FILE_CONTENT)
    def get(self, request: Request, file_id: int) -> StreamingHttpResponse:
        """The file's bytes, with its content type, as a download."""
        return file_response(files.file_get(user=_user(request), file_id=file_id))


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
