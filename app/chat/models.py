"""Rooms and their messages, stored in PostgreSQL."""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.db.models.functions import Length
from django.db.models.lookups import Range
from django.utils import timezone

from chat.rooms import ROOM_NAME_MAX_LENGTH, validate_room_name

# Longest message text, in characters, after trimming surrounding white space.
MAX_TEXT_LENGTH = 2000


def iso_utc(moment: datetime) -> str:
    """Format an aware datetime in ISO 8601, UTC, milliseconds: ``2025-01-31T08:15:02.250Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_frame(pk: int, author: str, text: str, sent_at: datetime) -> dict[str, Any]:
    """Build the ``chat.message`` frame WebSocket clients get for one stored message.

    Args:
        pk: the message's id.
        author: the author's username.
        text: the message text, verbatim.
        sent_at: when it was stored (aware datetime); sent as ``iso_utc``.
    """
    return {
        "type": "chat.message",
        "id": pk,
        "author": author,
        "text": text,
        "sent_at": iso_utc(sent_at),
    }


class Room(models.Model):
    """A chat room, created by the index form or by its first message."""

    name = models.CharField(
        max_length=ROOM_NAME_MAX_LENGTH, unique=True, validators=[validate_room_name]
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # When the room was created or last received a message; orders the index.
    last_activity_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-last_activity_at", "name"]

    def __str__(self) -> str:
        return self.name


class MessageQuerySet(models.QuerySet["Message"]):
    """Queries the room page and the consumer need."""

    def history(self, room_name: str, limit: int) -> list[dict[str, Any]]:
        """Return the newest ``limit`` messages of a room as frames, oldest first.

        Each item is the ``message_frame`` a live client gets, plus ``shown_at``: the send
        time in UTC as ``YYYY-MM-DD HH:MM`` for the page to show before its script runs. It
        reads the four columns a frame needs as tuples, without ``Message`` or user objects:
        the room page renders this on every request, and objects and the ``date`` filter
        were most of its cost (cProfile, 50 messages).

        Args:
            room_name: the room's name; an unknown room gives an empty list.
            limit: most messages returned.
        """
        author = f"author__{get_user_model().USERNAME_FIELD}"
        newest = (
            self.filter(room__name=room_name)
            .order_by("-id")
            .values_list("id", author, "text", "sent_at")[:limit]
        )
        return [
            {
                **message_frame(pk, name, text, sent_at),
                "shown_at": sent_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            }
            for pk, name, text, sent_at in reversed(newest)
        ]

    def after(self, room_name: str, after_id: int, limit: int) -> list["Message"]:
        """Return up to ``limit`` messages of a room with an id above ``after_id``, oldest first."""
        return list(
            self.filter(room__name=room_name, id__gt=after_id)
            .select_related("author")
            .order_by("id")[:limit]
        )


class Message(models.Model):
    """One message, as sent: the text is stored verbatim and never treated as HTML."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages"
    )
    text = models.TextField(max_length=MAX_TEXT_LENGTH)
    sent_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = MessageQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["room", "id"], name="chat_message_room_id")]
        constraints = [
            models.CheckConstraint(
                condition=Range(Length("text"), (1, MAX_TEXT_LENGTH)),
                name="chat_message_text_length",
            )
        ]

    def __str__(self) -> str:
        return f"{self.author} in {self.room}: {self.text[:40]}"

    def as_frame(self) -> dict[str, Any]:
        """Return the ``chat.message`` frame sent to WebSocket clients (loads the author)."""
        return message_frame(self.pk, self.author.get_username(), self.text, self.sent_at)

    @classmethod
    def post(cls, room_name: str, author: AbstractBaseUser, text: str) -> "Message":
        """Store a message, creating its room if needed, and mark the room active.

        Args:
            room_name: a valid room name.
            author: the sending user (a saved ``User``).
            text: 1 to MAX_TEXT_LENGTH characters, already validated.

        Raises:
            django.db.DatabaseError: the database refused or is unreachable.
        """
        with transaction.atomic():
            room, _ = Room.objects.get_or_create(name=room_name)
            message = cls.objects.create(room=room, author=author, text=text)
            Room.objects.filter(pk=room.pk, last_activity_at__lt=message.sent_at).update(
                last_activity_at=message.sent_at
            )
        return message
