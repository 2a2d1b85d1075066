"""Conversations, their messages, and templates (presets)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Template(models.Model):
    """A preset: system prompt, model and parameters. No owner means a global one, made by admins."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="templates"
    )
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    system_prompt = models.TextField(blank=True)
    model = models.CharField(max_length=128, blank=True, help_text="Empty: the caller's choice.")
    parameters = models.JSONField(default=dict, blank=True)
    is_public = models.BooleanField(default=False, help_text="Visible to every user.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")

    def __str__(self) -> str:
        return self.name

    @property
    def is_global(self) -> bool:
        return self.owner_id is None


class Conversation(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=128, blank=True)
    template = models.ForeignKey(Template, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    system_prompt = models.TextField(blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    pinned = models.BooleanField(default=False)
    archived = models.BooleanField(default=False)
    share_token = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    # The last message of the branch shown and continued; null: the newest message.
    current_leaf = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-updated_at", "-id")
        indexes = (
            # GET /chat/history: the owner's newest first.
            models.Index(fields=("owner", "-updated_at", "-id"), name="chats_conv_owner_newest"),
            # GET /chat/conversations: pinned ones first, then newest.
            models.Index(fields=("owner", "-pinned", "-updated_at", "-id"), name="chats_conv_owner_pinned"),
        )

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class MessageRole(models.TextChoices):
    USER = "user"
    ASSISTANT = "assistant"
    # A function's output, answering one of the previous reply's tool calls (`tool_call_id`).
    TOOL = "tool"


class MessageStatus(models.TextChoices):
    COMPLETE = "complete"
    STREAMING = "streaming"
    FAILED = "failed"
    STOPPED = "stopped"


class ChatFile(models.Model):
    """A file a user uploaded, to attach to messages; kept by Django's storage API."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_files")
    file = models.FileField(upload_to="chat-files/%Y/%m/")
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=128)
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "file"
        indexes = (models.Index(fields=("owner", "-created_at"), name="chats_file_owner_newest"),)

    def __str__(self) -> str:
        return self.name


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    # The message this one follows: regenerated replies and edits are siblings under it.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    attachments = models.ManyToManyField(ChatFile, blank=True, related_name="messages")
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    content = models.TextField(blank=True)
    # A reasoning model's thinking, shown apart from the answer.
    reasoning = models.TextField(blank=True)
    # The functions a reply asked the caller to run: [{id, name, arguments}], OpenAI's order.
    tool_calls = models.JSONField(default=list, blank=True)
    tool_call_id = models.CharField(max_length=128, blank=True, help_text="The call a tool message answers.")
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.COMPLETE)
    model = models.CharField(max_length=128, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        indexes = (
            models.Index(fields=("conversation", "id"), name="chats_msg_conv_order"),
            models.Index(
                fields=("status",),
                name="chats_msg_streaming",
                condition=models.Q(status="streaming"),
            ),
        )
        constraints = (
            # One turn per conversation at a time (chats.services.conversation_check_idle
            # answers 409 first; this holds even for a writer that skipped it).
            models.UniqueConstraint(
                fields=("conversation",),
                condition=models.Q(status="streaming"),
                name="chats_msg_one_streaming_per_conversation",
            ),
        )

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"
