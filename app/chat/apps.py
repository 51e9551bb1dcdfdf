"""App configuration for the chat app."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Chat rooms and messages."""

    name = "chat"
    verbose_name = "Chat"

    def ready(self) -> None:
        """Connect the signals that close a user's WebSockets when the session ends, and
        those that replace a room's cached history when it changes (chat/history.py)."""
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

        from chat import history, sessions
        from chat.models import Message, Room

        user_model = get_user_model()
        user_logged_out.connect(sessions.on_logged_out, dispatch_uid="chat.sessions.logged_out")
        post_save.connect(
            sessions.on_user_saved, sender=user_model, dispatch_uid="chat.sessions.user_saved"
        )
        post_delete.connect(
            sessions.on_user_deleted, sender=user_model, dispatch_uid="chat.sessions.user_deleted"
        )
        for signal, name in ((post_save, "saved"), (post_delete, "deleted")):
            signal.connect(
                history.on_message_changed,
                sender=Message,
                dispatch_uid=f"chat.history.message_{name}",
            )
        for signal, name in ((pre_save, "saved"), (pre_delete, "deleted")):
            signal.connect(
                history.on_room_changed, sender=Room, dispatch_uid=f"chat.history.room_{name}"
            )
        post_save.connect(
            history.on_user_saved, sender=user_model, dispatch_uid="chat.history.user_saved"
        )
