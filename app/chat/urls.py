"""HTTP routes of the chat pages."""

from django.urls import path, register_converter

from chat import views
from chat.rooms import RoomNameConverter

register_converter(RoomNameConverter, "room")

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("chat/<room:room_name>/", views.room, name="room"),
]
