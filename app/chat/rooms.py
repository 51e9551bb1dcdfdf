"""Room names: the one rule used by the form, the URLs and the WebSocket consumer.

A room name is 1 to 64 characters from ``A-Z a-z 0-9 _ -``; names are
case-sensitive (``Lobby`` and ``lobby`` are two rooms).
"""

import re

from django.core.validators import RegexValidator

ROOM_NAME_MAX_LENGTH = 64
ROOM_NAME_CHARACTERS = "[A-Za-z0-9_-]"
_ROOM_NAME = re.compile(rf"{ROOM_NAME_CHARACTERS}{{1,{ROOM_NAME_MAX_LENGTH}}}")

validate_room_name = RegexValidator(
    regex=rf"\A{_ROOM_NAME.pattern}\Z",
    message=(
        f"Use 1 to {ROOM_NAME_MAX_LENGTH} letters, digits, hyphens or underscores "
        "(no spaces or other characters)."
    ),
    code="invalid_room_name",
)


def is_valid_room_name(name: object) -> bool:
    """Tell whether ``name`` is a string that follows the room name rule."""
    return isinstance(name, str) and _ROOM_NAME.fullmatch(name) is not None


def group_name(room_name: str) -> str:
    """Return the channel layer group of a room.

    Args:
        room_name: a valid room name (see ``is_valid_room_name``); the result then
            only holds characters channel layers accept and is under their
            100 character limit.
    """
    return f"chat.room.{room_name}"


class RoomNameConverter:
    """URL path converter ``<room:name>``: a URL with any other name is a 404."""

    regex = _ROOM_NAME.pattern

    def to_python(self, value: str) -> str:
        """Return the room name as it appears in the URL."""
        return value

    def to_url(self, value: str) -> str:
        """Return the room name for use in a URL."""
        return value
