"""HTTP routes of the chats app."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from chats import gateway, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("chat/send", views.SendView.as_view(), name="chat-send"),
    path("chat/history", views.HistoryView.as_view(), name="chat-history"),
    path("chat/conversations", views.ConversationListView.as_view(), name="chat-conversations"),
    path(
        "chat/conversations/<int:conversation_id>",
        views.ConversationDetailView.as_view(),
        name="chat-conversation",
    ),
    path(
        "chat/conversations/<int:conversation_id>/messages",
        views.ConversationMessagesView.as_view(),
        name="chat-conversation-messages",
    ),
    path(
        "chat/conversations/<int:conversation_id>/share",
        views.ConversationShareView.as_view(),
        name="chat-conversation-share",
    ),
    path("chat/messages/<int:message_id>", views.MessageDetailView.as_view(), name="chat-message"),
    path(
        "chat/messages/<int:message_id>/regenerate",
        views.RegenerateView.as_view(),
        name="chat-message-regenerate",
    ),
    path(
        "chat/messages/<int:message_id>/stream", views.MessageStreamView.as_view(), name="chat-message-stream"
    ),
    path("chat/messages/<int:message_id>/stop", views.StopView.as_view(), name="chat-message-stop"),
    path("chat/templates", views.TemplateListView.as_view(), name="chat-templates"),
    path("chat/templates/<int:template_id>", views.TemplateDetailView.as_view(), name="chat-template"),
    path("chat/shared/<str:token>", views.SharedConversationView.as_view(), name="chat-shared"),
    path("v1/models", gateway.ModelsView.as_view(), name="v1-models"),
    path("v1/models/<path:model_id>", gateway.ModelView.as_view(), name="v1-model"),
    path(
        "v1/chat/completions",
        gateway.answering(gateway.ChatCompletionsView.as_view()),
        name="v1-chat-completions",
    ),
]
