"""Chats: conversations, messages, templates and sharing; the AI turn and its surfaces."""
