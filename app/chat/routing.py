"""WebSocket routes, mounted by config/asgi.py.

The pattern takes any room name so that the consumer can refuse a bad one with
its documented close code (4400) rather than fail to route.
"""

from django.urls import re_path

from chat.consumers import ChatConsumer

websocket_urlpatterns = [
    re_path(r"^ws/chat/(?P<room_name>.*)/$", ChatConsumer.as_asgi()),
]
