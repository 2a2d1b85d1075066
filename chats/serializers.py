"""Shapes of the chats API shared by several views."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chats import files
from chats.branches import branch_of
from chats.models import ChatFile, Conversation, Message, Template


class ParametersSerializer(serializers.Serializer[dict[str, Any]]):
    """Sampling parameters a conversation or template may fix; unknown keys are refused."""

    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    top_p = serializers.FloatField(min_value=0, max_value=1, required=False)
    max_tokens = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown parameter: use temperature, top_p or max_tokens."] for name in unknown}
                )
        return dict(super().to_internal_value(data))


class ChatFileSerializer(serializers.ModelSerializer[ChatFile]):
    """An uploaded file, as its owner sees it."""

    class Meta:
        model = ChatFile
        fields = ("id", "name", "content_type", "size", "created_at")
        read_only_fields = fields


class AttachmentSerializer(serializers.ModelSerializer[ChatFile]):
    """A file a message carries."""

    class Meta:
        model = ChatFile
        fields = ("id", "name", "content_type", "size")
        read_only_fields = fields


class SharedAttachmentSerializer(serializers.ModelSerializer[ChatFile]):
    """A file a shared message carries: its name only, never a way to its content."""

    class Meta:
        model = ChatFile
        fields = ("name",)
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer[Message]):
    """A message of a conversation's tree (chats.branches): `parent_id` is the message it
    follows; its siblings (the regenerated replies, the edits) share that parent, and
    `sibling_index` (1-based, oldest first) says which of the `sibling_count` it is."""

    parent_id = serializers.IntegerField(read_only=True, allow_null=True)
    sibling_count = serializers.IntegerField(read_only=True, help_text="Itself included.")
    sibling_index = serializers.IntegerField(read_only=True, help_text="1-based, oldest first.")
    attachments = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = (
            "id",
            "parent_id",
            "sibling_count",
            "sibling_index",
            "role",
            "content",
            "reasoning",
            "attachments",
            "status",
            "model",
            "input_tokens",
            "output_tokens",
            "error_code",
            "created_at",
            "edited_at",
        )

    @extend_schema_field(AttachmentSerializer(many=True))
    def get_attachments(self, message: Message) -> list[dict[str, Any]]:
        return list(AttachmentSerializer(files.attached(message), many=True).data)


class HistoryMessageSerializer(serializers.ModelSerializer[Message]):
    parent_id = serializers.IntegerField(read_only=True, allow_null=True)
    attachments = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ("id", "parent_id", "role", "content", "reasoning", "attachments", "status", "created_at")

    @extend_schema_field(AttachmentSerializer(many=True))
    def get_attachments(self, message: Message) -> list[dict[str, Any]]:
        return list(AttachmentSerializer(files.attached(message), many=True).data)


class ConversationSerializer(serializers.ModelSerializer[Conversation]):
    template_id = serializers.IntegerField(read_only=True, allow_null=True)
    shared = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = (
            "id",
            "title",
            "model",
            "template_id",
            "system_prompt",
            "parameters",
            "pinned",
            "archived",
            "shared",
            "created_at",
            "updated_at",
        )

    def get_shared(self, conversation: Conversation) -> bool:
        return conversation.share_token is not None


class HistorySerializer(serializers.ModelSerializer[Conversation]):
    """The shape of a history entry; `history_representation` renders pages of it."""

    messages = serializers.SerializerMethodField(help_text="The current branch, root to leaf.")

    class Meta:
        model = Conversation
        fields = ("id", "title", "model", "created_at", "updated_at", "messages")

    @extend_schema_field(HistoryMessageSerializer(many=True))
    def get_messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        messages = branch_of(
            messages=list(conversation.messages.order_by("id")), leaf_id=conversation.current_leaf_id
        )
        files.prefetch_attachments(messages)
        return list(HistoryMessageSerializer(messages, many=True).data)


_datetime = serializers.DateTimeField()


def _datetime_text(value: datetime) -> str:
    """DRF's DateTimeField output; for a UTC datetime in a UTC server (the default TIME_ZONE)
    written directly, without the field's timezone work per value."""
    if value.utcoffset() != timedelta(0) or settings.TIME_ZONE != "UTC":
        return _datetime.to_representation(value)
    return value.isoformat().replace("+00:00", "Z")


def history_representation(
    conversations: list[dict[str, Any]], messages: dict[int, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """HistorySerializer's output from rows, without a field object per value: a page holds
    hundreds of messages."""
    rendered = []
    for conversation in conversations:
        entries = messages.get(conversation["id"], [])
        for message in entries:
            message["created_at"] = _datetime_text(message["created_at"])
        rendered.append(
            {
                **conversation,
                "created_at": _datetime_text(conversation["created_at"]),
                "updated_at": _datetime_text(conversation["updated_at"]),
                "messages": entries,
            }
        )
    return rendered


class SharedMessageSerializer(serializers.ModelSerializer[Message]):
    attachments = serializers.SerializerMethodField(
        help_text="The files' names: their content is not shared."
    )

    class Meta:
        model = Message
        fields = ("role", "content", "reasoning", "attachments", "created_at")

    @extend_schema_field(SharedAttachmentSerializer(many=True))
    def get_attachments(self, message: Message) -> list[dict[str, Any]]:
        return list(SharedAttachmentSerializer(files.attached(message), many=True).data)


class SharedConversationSerializer(serializers.ModelSerializer[Conversation]):
    """What a share link shows: the title and the current branch, nothing about the owner."""

    messages = serializers.SerializerMethodField(help_text="The current branch, root to leaf.")

    class Meta:
        model = Conversation
        fields = ("title", "model", "created_at", "messages")

    @extend_schema_field(SharedMessageSerializer(many=True))
    def get_messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        # The prefetched messages (chats.selectors.shared_conversation_get): no query per message.
        messages = branch_of(messages=list(conversation.messages.all()), leaf_id=conversation.current_leaf_id)
        files.prefetch_attachments(messages)
        return list(SharedMessageSerializer(messages, many=True).data)


class TemplateSerializer(serializers.ModelSerializer[Template]):
    is_global = serializers.BooleanField(read_only=True)
    is_own = serializers.SerializerMethodField()

    class Meta:
        model = Template
        fields = (
            "id",
            "name",
            "description",
            "system_prompt",
            "model",
            "parameters",
            "is_public",
            "is_global",
            "is_own",
            "created_at",
            "updated_at",
        )

    def get_is_own(self, template: Template) -> bool:
        request = self.context.get("request")
        return request is not None and template.owner_id == request.user.pk
