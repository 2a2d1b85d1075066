"""The operator's console for conversations and templates."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from chats.models import Conversation, Message, Template


class MessageInline(admin.TabularInline[Message, Conversation]):
    model = Message
    fields = (
        "role",
        "status",
        "model",
        "content",
        "input_tokens",
        "output_tokens",
        "error_code",
        "created_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin[Conversation]):
    list_display = ("__str__", "owner", "model", "message_count", "pinned", "archived", "updated_at")
    list_filter = ("archived", "pinned", "model", "created_at")
    search_fields = ("title", "owner__email", "messages__content")
    date_hierarchy = "created_at"
    readonly_fields = ("owner", "share_token", "created_at", "updated_at")
    list_select_related = ("owner",)
    inlines = (MessageInline,)
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return super().get_queryset(request).annotate(message_total=Count("messages"))

    @admin.display(description="messages", ordering="message_total")
    def message_count(self, conversation: Conversation) -> int:
        return int(getattr(conversation, "message_total", 0))


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin[Template]):
    list_display = ("name", "owner", "model", "is_public", "updated_at")
    list_filter = ("is_public", "model")
    search_fields = ("name", "description", "owner__email")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin[Message]):
    """Every message, searchable; never edited here, as a record of what was said."""

    list_display = (
        "id",
        "conversation",
        "role",
        "status",
        "model",
        "input_tokens",
        "output_tokens",
        "created_at",
    )
    list_filter = ("role", "status", "model", "created_at")
    list_select_related = ("conversation",)
    search_fields = ("content", "conversation__title", "conversation__owner__email")
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = (
        "conversation",
        "role",
        "status",
        "model",
        "content",
        "input_tokens",
        "output_tokens",
        "error_code",
        "created_at",
        "edited_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False
