"""Helpers for the tests: logged-in sessions and WebSocket clients."""

from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client

from config.asgi import application

PASSWORD = "correct horse battery staple"

# Seconds to wait for a frame that should come.
TIMEOUT = 3


def session_cookie(user: AbstractBaseUser) -> str:
    """Log ``user`` in through the test client and return the session cookie's value."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def communicator(
    room: str, cookie: str | None = None, origin: str | None = "http://testserver"
) -> WebsocketCommunicator:
    """A WebSocket client of the full ASGI application for ``/ws/chat/<room>/``.

    Args:
        room: the room name as it appears in the path.
        cookie: a session cookie value (see ``session_cookie``); None: anonymous.
        origin: the Origin header; None sends none.
    """
    headers = [(b"host", b"testserver")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, f"/ws/chat/{room}/", headers=headers)


async def join(room: str, cookie: str) -> WebsocketCommunicator:
    """Connect to ``/ws/chat/<room>/`` with the session ``cookie``; assert it was accepted."""
    client = communicator(room, cookie)
    connected, _ = await client.connect(timeout=TIMEOUT)
    assert connected
    return client
