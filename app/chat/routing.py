"""WebSocket routes, mounted by config/asgi.py.

The chat pattern takes any room name so that the consumer can refuse a bad one
with its documented close code (4400) rather than fail to route. Every other
path ends at ``UnknownPathConsumer`` (accept, then close with 4404): without
it, channels' router raises and the server answers the handshake with HTTP 500
and a traceback in the log.
"""

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import re_path

from chat.consumers import CLOSE_UNKNOWN_PATH, ChatConsumer


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Accept, then close with 4404 ("unknown path"), a WebSocket to a path no route serves."""

    async def connect(self) -> None:
        """Accept (so that browsers see the code) and close with 4404."""
        await self.accept()
        await self.close(code=CLOSE_UNKNOWN_PATH, reason="unknown path")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Ignore frames sent before the close arrived."""


websocket_urlpatterns = [
    re_path(r"^ws/chat/(?P<room_name>.*)/$", ChatConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
