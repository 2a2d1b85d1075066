"""Shapes of the chats API shared by several views."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from rest_framework import serializers

from chats.models import Conversation, Message, Template


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


class MessageSerializer(serializers.ModelSerializer[Message]):
    class Meta:
        model = Message
        fields = (
            "id",
            "role",
            "content",
            "status",
            "model",
            "input_tokens",
            "output_tokens",
            "error_code",
            "created_at",
            "edited_at",
        )


class HistoryMessageSerializer(serializers.ModelSerializer[Message]):
    class Meta:
        model = Message
        fields = ("id", "role", "content", "status", "created_at")


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

    messages = HistoryMessageSerializer(many=True, read_only=True)

    class Meta:
        model = Conversation
        fields = ("id", "title", "model", "created_at", "updated_at", "messages")


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
    class Meta:
        model = Message
        fields = ("role", "content", "created_at")


class SharedConversationSerializer(serializers.ModelSerializer[Conversation]):
    """What a share link shows: the title and the messages, nothing about the owner."""

    messages = SharedMessageSerializer(many=True, read_only=True)

    class Meta:
        model = Conversation
        fields = ("title", "model", "created_at", "messages")


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
