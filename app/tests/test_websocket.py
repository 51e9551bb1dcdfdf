"""The chat consumer over the full ASGI stack, with the Redis channel layer."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils.html import escape

from chat.consumers import CATCHUP_LIMIT, CLOSE_INVALID_ROOM, CLOSE_UNAUTHENTICATED
from chat.models import Message, Room
from tests.helpers import TIMEOUT, communicator, join

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def receive(client: WebsocketCommunicator) -> dict:
    return await client.receive_json_from(timeout=TIMEOUT)


async def send_message(client: WebsocketCommunicator, text: str) -> dict:
    """Send a chat message and return the copy the room broadcasts back."""
    await client.send_json_to({"type": "chat.message", "text": text})
    frame = await receive(client)
    assert frame["type"] == "chat.message", frame
    return frame


async def expect_error(client: WebsocketCommunicator, code: str) -> dict:
    frame = await receive(client)
    assert frame["type"] == "error", frame
    assert frame["code"] == code, frame
    assert frame["message"]
    return frame


async def test_message_reaches_second_client_in_room_and_no_other_room(alice_cookie, bob_cookie):
    alice = await join("lobby", alice_cookie)
    bob = await join("lobby", bob_cookie)
    elsewhere = await join("kitchen", bob_cookie)
    try:
        sent = await send_message(alice, "  hello, bob  ")
        received = await receive(bob)

        assert received == sent
        assert received["author"] == "alice"
        assert received["text"] == "hello, bob"
        assert isinstance(received["id"], int)
        assert received["sent_at"].endswith("Z")
        assert await elsewhere.receive_nothing(timeout=0.5)
    finally:
        for client in (alice, bob, elsewhere):
            await client.disconnect()


async def test_message_is_stored_and_room_records_activity(alice_cookie):
    alice = await join("lobby", alice_cookie)
    try:
        sent = await send_message(alice, "kept")
    finally:
        await alice.disconnect()

    message = await Message.objects.select_related("room", "author").aget(pk=sent["id"])
    assert (message.room.name, message.author.username, message.text) == ("lobby", "alice", "kept")
    room = await Room.objects.aget(name="lobby")
    assert room.last_activity_at == message.sent_at


async def test_catchup_after_reconnect_replays_missed_messages(alice_cookie, bob_cookie):
    alice = await join("lobby", alice_cookie)
    bob = await join("lobby", bob_cookie)
    first = await send_message(alice, "before bob left")
    assert (await receive(bob))["id"] == first["id"]
    await bob.disconnect()

    missed = [await send_message(alice, f"missed {n}") for n in range(3)]
    await alice.disconnect()

    bob = await join("lobby", bob_cookie)
    try:
        await bob.send_json_to({"type": "chat.catchup", "after": first["id"]})
        replayed = [await receive(bob) for _ in missed]
        assert replayed == missed
        assert await bob.receive_nothing(timeout=0.3)
    finally:
        await bob.disconnect()


async def test_catchup_is_bounded_and_pages_on(make_user, alice_cookie):
    @database_sync_to_async
    def store_many(count: int) -> list[int]:
        author = make_user("carol")
        room = Room.objects.create(name="busy")
        created = Message.objects.bulk_create(
            Message(room=room, author=author, text=f"m{n}") for n in range(count)
        )
        return [message.pk for message in created]

    ids = await store_many(CATCHUP_LIMIT + 5)
    alice = await join("busy", alice_cookie)
    try:
        await alice.send_json_to({"type": "chat.catchup", "after": 0})
        first_page = [(await receive(alice))["id"] for _ in range(CATCHUP_LIMIT)]
        await expect_error(alice, "catchup_truncated")
        await alice.send_json_to({"type": "chat.catchup", "after": first_page[-1]})
        rest = [(await receive(alice))["id"] for _ in range(5)]
        assert first_page + rest == ids
        assert await alice.receive_nothing(timeout=0.3)
    finally:
        await alice.disconnect()


@pytest.mark.parametrize("cookie", [None, "not-a-session"])
async def test_unauthenticated_connection_is_closed_with_4401(cookie):
    client = communicator("lobby", cookie=cookie)
    connected, _ = await client.connect(timeout=TIMEOUT)
    assert connected  # Accepted first, so that the browser sees the close code.
    closing = await client.receive_output(timeout=TIMEOUT)
    assert closing == {
        "type": "websocket.close",
        "code": CLOSE_UNAUTHENTICATED,
        "reason": "authentication required",
    }


@pytest.mark.parametrize("origin", ["https://evil.example", None])
async def test_foreign_or_missing_origin_is_refused(alice_cookie, origin):
    client = communicator("lobby", alice_cookie, origin=origin)
    connected, _ = await client.connect(timeout=TIMEOUT)
    assert not connected


@pytest.mark.parametrize("room", ["bad$name", "with space", "x" * 65, "", "a/b", "café"])
async def test_invalid_room_name_is_closed_with_4400(alice_cookie, room):
    client = communicator(room, alice_cookie)
    connected, _ = await client.connect(timeout=TIMEOUT)
    assert connected
    closing = await client.receive_output(timeout=TIMEOUT)
    assert closing["type"] == "websocket.close"
    assert closing["code"] == CLOSE_INVALID_ROOM


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ("[" * 20000 + "]" * 20000, "frame_too_large"),
        ("[" * 5000 + "]" * 5000, "invalid_json"),
        (json.dumps({"type": "chat.shout", "text": "hi"}), "unknown_type"),
        (json.dumps({"text": "no type"}), "unknown_type"),
        (json.dumps({"type": ["chat.message"]}), "unknown_type"),
        (json.dumps({"type": "chat.message", "text": "   \n\t "}), "empty_text"),
        (json.dumps({"type": "chat.message", "text": ""}), "empty_text"),
        (json.dumps({"type": "chat.message", "text": "x" * 2001}), "text_too_long"),
        (json.dumps({"type": "chat.message", "text": 42}), "invalid_text"),
        (json.dumps({"type": "chat.message"}), "invalid_text"),
        ('{"type": "chat.message", "text": "\\ud800"}', "invalid_text"),
        (json.dumps({"type": "chat.message", "text": "nul\x00byte"}), "invalid_text"),
        (json.dumps({"type": "chat.catchup", "after": -1}), "invalid_after"),
        (json.dumps({"type": "chat.catchup", "after": "3"}), "invalid_after"),
        (json.dumps({"type": "chat.catchup", "after": True}), "invalid_after"),
        (json.dumps({"type": "chat.catchup", "after": 1.5}), "invalid_after"),
        (json.dumps({"type": "chat.catchup", "after": 2**70}), "invalid_after"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
async def test_bad_frame_gets_error_and_connection_stays_usable(alice_cookie, frame, code):
    alice = await join("lobby", alice_cookie)
    try:
        await alice.send_to(text_data=frame)
        await expect_error(alice, code)
        sent = await send_message(alice, "still here")
        assert sent["text"] == "still here"
    finally:
        await alice.disconnect()


async def test_binary_frame_gets_error_and_connection_stays_usable(alice_cookie):
    alice = await join("lobby", alice_cookie)
    try:
        await alice.send_to(bytes_data=b'{"type": "chat.message", "text": "hi"}')
        await expect_error(alice, "invalid_json")
        await send_message(alice, "still here")
    finally:
        await alice.disconnect()


async def test_longest_allowed_message_goes_through(alice_cookie):
    alice = await join("lobby", alice_cookie)
    try:
        sent = await send_message(alice, "é" * 2000)
        assert len(sent["text"]) == 2000
    finally:
        await alice.disconnect()


async def test_flood_is_rate_limited_and_connection_recovers(alice_cookie, bob_cookie):
    alice = await join("lobby", alice_cookie)
    bob = await join("lobby", bob_cookie)
    try:
        for n in range(30):
            await alice.send_json_to({"type": "chat.message", "text": f"flood {n}"})
        frames = [await receive(alice) for _ in range(30)]
        delivered = [frame for frame in frames if frame["type"] == "chat.message"]
        refused = [frame for frame in frames if frame["type"] == "error"]
        # A burst of 10 passes; the rest arrive faster than 5 per second refills.
        assert 10 <= len(delivered) < 30
        assert refused
        assert {frame["code"] for frame in refused} == {"rate_limited"}
        assert [(await receive(bob))["text"] for _ in delivered] == [
            frame["text"] for frame in delivered
        ]

        await asyncio.sleep(0.5)  # Refills two tokens.
        sent = await send_message(alice, "after the flood")
        assert (await receive(bob))["id"] == sent["id"]
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_html_payload_is_stored_verbatim_and_never_rendered_as_markup(
    alice_cookie, bob_cookie
):
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    alice = await join("lobby", alice_cookie)
    bob = await join("lobby", bob_cookie)
    try:
        sent = await send_message(alice, payload)
        assert (await receive(bob))["text"] == payload
    finally:
        await alice.disconnect()
        await bob.disconnect()
    stored = await Message.objects.aget(pk=sent["id"])
    assert stored.text == payload

    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = bob_cookie
    page = (await database_sync_to_async(client.get)("/chat/lobby/")).content.decode()
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert escape(payload) in page


async def test_broadcast_skips_the_per_message_database_cleanup(
    alice_cookie, bob_cookie, monkeypatch
):
    """Channels closes old database connections (a worker-thread hop) before each handler.

    A room broadcast is one handler call per member and never touches the database, so the
    consumer skips that hop for it; the client's own frame keeps it.
    """
    import channels.consumer

    original = channels.consumer.aclose_old_connections
    calls = []

    async def counting() -> None:
        calls.append(1)
        await original()

    alice = await join("lobby", alice_cookie)
    bob = await join("lobby", bob_cookie)
    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting)
    try:
        sent = await send_message(alice, "one hop only")
        assert await receive(bob) == sent
        # alice's websocket.receive: 1; the chat.message to alice and to bob: 0.
        assert len(calls) == 1
    finally:
        for client in (alice, bob):
            await client.disconnect()
