"""Forms of the chat pages."""

from django import forms

from chat.rooms import ROOM_NAME_MAX_LENGTH, validate_room_name


class RoomForm(forms.Form):
    """Enter a room by name; a name not used before creates the room."""

    name = forms.CharField(
        label="Room name",
        max_length=ROOM_NAME_MAX_LENGTH,
        validators=[validate_room_name],
        widget=forms.TextInput(attrs={"pattern": r"[A-Za-z0-9_\-]+", "autocomplete": "off"}),
    )
