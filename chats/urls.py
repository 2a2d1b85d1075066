"""HTTP routes of the chats app."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from chats import embeddings, gateway, messages_api, responses_api, views
from chats.answering import answering

urlpatterns: list[URLPattern | URLResolver] = [
    path("chat/send", answering(views.SendView.as_view()), name="chat-send"),
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
    path("chat/messages/<int:message_id>", answering(views.MessageDetailView.as_view()), name="chat-message"),
    path(
        "chat/messages/<int:message_id>/regenerate",
        answering(views.RegenerateView.as_view()),
        name="chat-message-regenerate",
    ),
    path(
        "chat/messages/<int:message_id>/stream", views.MessageStreamView.as_view(), name="chat-message-stream"
    ),
    path("chat/messages/<int:message_id>/stop", views.StopView.as_view(), name="chat-message-stop"),
    path(
        "chat/messages/<int:message_id>/select", views.MessageSelectView.as_view(), name="chat-message-select"
    ),
    path("chat/files", views.FileListView.as_view(), name="chat-files"),
    path("chat/files/<int:file_id>", views.FileDetailView.as_view(), name="chat-file"),
    path("chat/files/<int:file_id>/content", views.FileContentView.as_view(), name="chat-file-content"),
    path("chat/templates", views.TemplateListView.as_view(), name="chat-templates"),
    path("chat/templates/<int:template_id>", views.TemplateDetailView.as_view(), name="chat-template"),
    path("chat/shared/<str:token>", views.SharedConversationView.as_view(), name="chat-shared"),
    path("v1/models", gateway.ModelsView.as_view(), name="v1-models"),
    path("v1/models/<path:model_id>", gateway.ModelView.as_view(), name="v1-model"),
    path(
        "v1/chat/completions",
        answering(gateway.ChatCompletionsView.as_view()),
        name="v1-chat-completions",
    ),
    path(
        "v1/responses",
        answering(responses_api.ResponsesView.as_view()),
        name="v1-responses",
    ),
    path("v1/responses/<str:response_id>", responses_api.ResponseView.as_view(), name="v1-response"),
    path("v1/embeddings", answering(embeddings.EmbeddingsView.as_view()), name="v1-embeddings"),
    path("v1/messages", answering(messages_api.MessagesView.as_view()), name="v1-messages"),
    path(
        "v1/messages/count_tokens",
        messages_api.CountTokensView.as_view(),
        name="v1-messages-count-tokens",
    ),
]
