"""App configuration for the chat app."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Chat rooms and messages."""

    name = "chat"
    verbose_name = "Chat"
