"""Strict WebSocket origins and clean refusals of unknown WebSocket paths."""

import logging

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings

from chat.consumers import CLOSE_UNKNOWN_PATH
from config.asgi import application
from tests.helpers import TIMEOUT, communicator

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_the_test_site_has_one_origin():
    assert settings.CHAT_ALLOWED_ORIGINS == ["http://testserver"]


@pytest.mark.parametrize(
    "origin", ["http://testserver", "http://testserver:80", "HTTP://TESTSERVER"]
)
async def test_the_sites_own_origin_is_accepted(alice_cookie, origin):
    client = communicator("lobby", alice_cookie, origin=origin)
    connected, _ = await client.connect(timeout=TIMEOUT)
    try:
        assert connected
        assert await client.receive_nothing(timeout=0.2)
    finally:
        await client.disconnect()


@pytest.mark.parametrize(
    "origin",
    [
        "http://testserver:8080",  # Same host, another port.
        "https://testserver",  # Same host, another scheme (and port).
        "https://testserver:80",  # Same port, another scheme.
        "http://sub.testserver",
        "http://testserver.evil.example",
        "null",
    ],
)
async def test_an_origin_differing_in_scheme_host_or_port_is_refused(alice_cookie, origin):
    client = communicator("lobby", alice_cookie, origin=origin)
    connected, _ = await client.connect(timeout=TIMEOUT)
    assert not connected  # Refused at the handshake: HTTP 403.


@pytest.mark.parametrize("path", ["/ws/other/", "/ws/chat/lobby", "/ws/", "/", "/ws/chat/"])
async def test_unknown_websocket_path_is_closed_with_4404_and_logs_no_error(
    alice_cookie, caplog, path
):
    headers = [
        (b"host", b"testserver"),
        (b"origin", b"http://testserver"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={alice_cookie}".encode()),
    ]
    client = WebsocketCommunicator(application, path, headers=headers)
    with caplog.at_level(logging.DEBUG):
        connected, _ = await client.connect(timeout=TIMEOUT)
        assert connected  # Accepted first, so that the browser sees the code.
        assert await client.receive_output(timeout=TIMEOUT) == {
            "type": "websocket.close",
            "code": CLOSE_UNKNOWN_PATH,
            "reason": "unknown path",
        }
        await client.disconnect()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
