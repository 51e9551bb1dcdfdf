"""Closing one server's WebSocket connections before a restart (``close_websockets``).

Over the full ASGI stack with the Redis channel layer that ``CHANNEL_LAYER`` selects,
as a deploy runs it: the command in one place, the connections in the consumers.
"""

from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import CommandError, call_command
from django.test import override_settings

from chat.servers import CLOSE_SERVICE_RESTART, MAX_REASON_BYTES
from tests.helpers import TIMEOUT, communicator

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def join_on(server_id: str, room: str, cookie: str) -> WebsocketCommunicator:
    """Connect to a room through a consumer that runs on server ``server_id``."""
    client = communicator(room, cookie)
    with override_settings(CHAT_SERVER_ID=server_id):
        connected, _ = await client.connect(timeout=TIMEOUT)
    assert connected
    return client


async def close_websockets(*args: str) -> str:
    """Run ``manage.py close_websockets`` as a deploy does; return what it printed."""
    out = StringIO()
    await sync_to_async(call_command)("close_websockets", *args, stdout=out)
    return out.getvalue()


async def send_message(client: WebsocketCommunicator, text: str) -> dict:
    await client.send_json_to({"type": "chat.message", "text": text})
    frame = await client.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "chat.message", frame
    return frame


async def test_clients_of_the_server_are_closed_with_1012_and_others_stay(alice_cookie, bob_cookie):
    alice = await join_on("app-1", "lobby", alice_cookie)
    kitchen = await join_on("app-1", "kitchen", alice_cookie)
    bob = await join_on("app-2", "lobby", bob_cookie)
    try:
        printed = await close_websockets("--server-id", "app-1")
        assert "group chat.server.app-1" in printed

        for client in (alice, kitchen):
            assert await client.receive_output(timeout=TIMEOUT) == {
                "type": "websocket.close",
                "code": CLOSE_SERVICE_RESTART,
                "reason": "service restart",
            }
        # The other server's client is untouched and still in its room.
        assert await bob.receive_nothing(timeout=0.3)
        assert (await send_message(bob, "still here"))["text"] == "still here"
    finally:
        for client in (alice, kitchen, bob):
            await client.disconnect()


async def test_default_server_is_the_setting_and_code_and_reason_are_passed(alice_cookie):
    alice = await join_on("this-host", "lobby", alice_cookie)
    try:
        with override_settings(CHAT_SERVER_ID="this-host"):
            await close_websockets("--code", "4000", "--reason", "moving")
        assert await alice.receive_output(timeout=TIMEOUT) == {
            "type": "websocket.close",
            "code": 4000,
            "reason": "moving",
        }
    finally:
        await alice.disconnect()


async def test_closed_client_reconnects_elsewhere_and_catches_up(alice_cookie, bob_cookie):
    alice = await join_on("app-2", "lobby", alice_cookie)
    bob = await join_on("app-1", "lobby", bob_cookie)
    first = await send_message(alice, "before the restart")
    assert (await bob.receive_json_from(timeout=TIMEOUT))["id"] == first["id"]

    await close_websockets("--server-id", "app-1")
    assert (await bob.receive_output(timeout=TIMEOUT))["code"] == CLOSE_SERVICE_RESTART
    await bob.disconnect()  # The browser's side of the close: the consumer leaves its groups.
    missed = [await send_message(alice, f"during the restart {n}") for n in range(3)]

    bob = await join_on("app-2", "lobby", bob_cookie)
    try:
        await bob.send_json_to({"type": "chat.catchup", "after": first["id"]})
        assert [await bob.receive_json_from(timeout=TIMEOUT) for _ in missed] == missed
        live = await send_message(alice, "after the restart")
        assert await bob.receive_json_from(timeout=TIMEOUT) == live
        # A second drain of app-1 reaches nobody: the closed consumer left its groups.
        await close_websockets("--server-id", "app-1")
        assert await bob.receive_nothing(timeout=0.3)
        assert await alice.receive_nothing(timeout=0.1)
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_a_server_without_connections_is_not_an_error():
    printed = await close_websockets("--server-id", "nobody-here")
    assert printed.startswith("Sent close 1012")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--code", "1006"], "Close code 1006 cannot be sent"),
        (["--code", "2999"], "Close code 2999 cannot be sent"),
        (["--reason", "é" * 62], f"longer than {MAX_REASON_BYTES} bytes"),
        (["--server-id", " "], "The server id is empty"),
    ],
)
async def test_invalid_options_fail_with_a_message(args, message):
    with pytest.raises(CommandError, match=message):
        await close_websockets(*args)


class AutobahnLikeConsumer:
    """Stands in for daphne's protocol: refuses close codes outside 1000 and 3000..4999.

    The check is autobahn's ``sendClose``, which daphne calls for every close.
    """

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.room_name = "lobby"

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        if code is not None and code != 1000 and not 3000 <= code <= 4999:
            raise Exception(f"invalid close code {code} (must be 1000 or from [3000, 4999])")
        self.sent.append(code)


@pytest.mark.parametrize(
    ("code", "sent"), [(1012, [4012]), (1001, [4001]), (1000, [1000]), (4321, [4321])]
)
async def test_a_server_that_refuses_registered_codes_closes_with_the_private_mirror(code, sent):
    from chat.consumers import ChatConsumer

    fake = AutobahnLikeConsumer()
    await ChatConsumer.chat_server_close(fake, {"code": code, "reason": "service restart"})
    assert fake.sent == sent


class RegisteredCodesConsumer(AutobahnLikeConsumer):
    """Stands in for uvicorn (the websockets library) and gunicorn's ASGI worker: they send
    every code RFC 6455 lets a server send, 1012 included (checked against both servers)."""

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        if code is not None and not (1000 <= code <= 1014 or 3000 <= code <= 4999):
            raise ValueError(f"invalid close code {code}")
        self.sent.append(code)


@pytest.mark.parametrize("code", [1012, 1001, 1000, 4321])
async def test_a_server_that_sends_registered_codes_gets_them_unchanged(code):
    from chat.consumers import ChatConsumer

    fake = RegisteredCodesConsumer()
    await ChatConsumer.chat_server_close(fake, {"code": code, "reason": "service restart"})
    assert fake.sent == [code]
