"""The operator's console for conversations, templates and uploaded files."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html_join

from chats import files
from chats.models import ChatFile, Conversation, Message, Template


class MessageInline(admin.TabularInline[Message, Conversation]):
    """Every message of every branch, in the order written; `parent_id` shows the tree."""

    model = Message
    fields = (
        "id",
        "parent_id",
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
    readonly_fields = ("owner", "share_token", "current_leaf", "created_at", "updated_at")
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
        "parent_id",
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
        "parent",
        "role",
        "status",
        "model",
        "content",
        "reasoning",
        "attachment_links",
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

    @admin.display(description="attachments")
    def attachment_links(self, message: Message) -> str:
        return (
            format_html_join(
                ", ",
                '<a href="{}">{}</a> ({})',
                (
                    (reverse("admin:chats_chatfile_change", args=[f.pk]), f.name, filesizeformat(f.size))
                    for f in files.attached(message)
                ),
            )
            or "-"
        )


@admin.register(ChatFile)
class ChatFileAdmin(admin.ModelAdmin[ChatFile]):
    """Uploaded files: looked at and deleted here (with their stored objects), never edited."""

    list_display = ("name", "owner", "content_type", "file_size", "created_at")
    list_filter = ("owner", "content_type", "created_at")
    search_fields = ("name", "owner__email")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ("name", "owner", "content_type", "file_size", "stored_as", "created_at", "attached_to")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ChatFile | None = None) -> bool:
        return False

    @admin.display(description="size", ordering="size")
    def file_size(self, chat_file: ChatFile) -> str:
        return filesizeformat(chat_file.size)

    @admin.display(description="stored as")
    def stored_as(self, chat_file: ChatFile) -> str:
        # The name in the storage (MEDIA_ROOT or the bucket), not a link: content goes to its owner only.
        return chat_file.file.name

    @admin.display(description="attached to")
    def attached_to(self, chat_file: ChatFile) -> str:
        return (
            format_html_join(
                ", ",
                '<a href="{}">message {}</a>',
                (
                    (reverse("admin:chats_message_change", args=[pk]), pk)
                    for pk in chat_file.messages.values_list("pk", flat=True)
                ),
            )
            or "-"
        )

    def delete_model(self, request: HttpRequest, obj: ChatFile) -> None:
        files.file_delete(chat_file=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ChatFile]) -> None:
        for chat_file in queryset:
            files.file_delete(chat_file=chat_file)
