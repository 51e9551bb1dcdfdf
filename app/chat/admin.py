"""Admin pages for rooms and messages."""

from django.contrib import admin

from chat.models import Message, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    """Rooms, most recently active first."""

    list_display = ["name", "last_activity_at", "created_at"]
    search_fields = ["name"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Messages, newest first; moderators can search and delete them."""

    list_display = ["id", "room", "author", "sent_at", "text"]
    list_filter = ["room"]
    search_fields = ["text", "author__username", "room__name"]
    list_select_related = ["room", "author"]
    raw_id_fields = ["room", "author"]
    ordering = ["-id"]
