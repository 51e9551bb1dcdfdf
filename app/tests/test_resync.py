"""No silent loss: every stored message reaches every open connection of its room.

Restarts the session's real Redis with clients connected, and breaks one broadcast.
"""

import asyncio
import os
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat.models import Message
from tests.helpers import TIMEOUT, join, session_cookie

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

# Seconds within which every stored message must have reached every client.
DEADLINE = 5.0


async def collect(client: WebsocketCommunicator, ids: set[int], seconds: float) -> None:
    """Add the ids of the chat.message frames the client gets within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        # A timed-out receive_json_from would cancel the application: look first.
        if await client.receive_nothing(timeout=0.05):
            continue
        frame = await client.receive_json_from(timeout=TIMEOUT)
        if frame["type"] == "chat.message":
            ids.add(frame["id"])


async def wait_until_all_have(
    clients: dict[str, WebsocketCommunicator], seen: dict[str, set[int]], room: str
) -> set[int]:
    """Read frames until every client has every stored message of the room, or DEADLINE."""
    stored = {
        pk async for pk in Message.objects.filter(room__name=room).values_list("id", flat=True)
    }
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        missing = {name for name in clients if not stored <= seen[name]}
        if not missing:
            break
        await asyncio.gather(*(collect(clients[name], seen[name], 0.2) for name in missing))
    return stored


@pytest.mark.skipif(
    os.environ.get("CHANNEL_LAYER", "pubsub") == "core",
    reason="the core layer's receive (BZPOPMIN) raises while Redis is down, which ends the "
    "consumer: the client is cut off and reconnects with chat.catchup, as room.js does",
)
async def test_redis_restart_loses_no_message(make_user, alice_cookie, bob_cookie, redis_server):
    carol_cookie = await database_sync_to_async(lambda: session_cookie(make_user("carol")))()
    clients = {
        "alice": await join("lobby", alice_cookie),
        "bob": await join("lobby", bob_cookie),
        "carol": await join("lobby", carol_cookie),
    }
    elsewhere = await join("kitchen", bob_cookie)
    seen = {name: set() for name in clients}
    alice = clients["alice"]
    try:
        await alice.send_json_to({"type": "chat.message", "text": "before"})
        await asyncio.gather(*(collect(c, seen[n], 0.3) for n, c in clients.items()))

        redis_server.stop()
        try:
            for n in range(3):
                await alice.send_json_to({"type": "chat.message", "text": f"while down {n}"})
            await collect(alice, seen["alice"], 0.5)
        finally:
            redis_server.start()
        # Right after the restart: the subscribers have not subscribed again yet.
        for n in range(3):
            await alice.send_json_to({"type": "chat.message", "text": f"just after {n}"})
            await asyncio.sleep(0.1)

        started = time.monotonic()
        stored = await wait_until_all_have(clients, seen, "lobby")
        assert len(stored) == 7
        for name in clients:
            assert stored <= seen[name], (name, sorted(stored - seen[name]))
        assert time.monotonic() - started < DEADLINE

        # Live delivery works again, and the other room got nothing of this one.
        await alice.send_json_to({"type": "chat.message", "text": "after"})
        live = (await clients["bob"].receive_json_from(timeout=TIMEOUT))["text"]
        assert live == "after"
        assert await elsewhere.receive_nothing(timeout=0.2)
    finally:
        for client in (*clients.values(), elsewhere):
            await client.disconnect()


async def test_a_broadcast_that_failed_still_reaches_the_room(
    alice_cookie, bob_cookie, monkeypatch
):
    """The sender's publish fails (a network fault on its host alone): others still get it."""
    from channels.layers import get_channel_layer
    from redis.exceptions import ConnectionError as RedisConnectionError

    alice = await join("lobby", alice_cookie)
    bob = await join("lobby", bob_cookie)
    layer = get_channel_layer()
    original = layer.group_send

    async def failing(group: str, message: dict) -> None:
        if message.get("type") == "chat.message":
            raise RedisConnectionError("injected fault")
        await original(group, message)

    try:
        monkeypatch.setattr(layer, "group_send", failing)
        await alice.send_json_to({"type": "chat.message", "text": "lost in transit"})
        own = await alice.receive_json_from(timeout=TIMEOUT)
        assert own["text"] == "lost in transit"  # The sender sees it at once.
        started = time.monotonic()
        pushed = await bob.receive_json_from(timeout=DEADLINE)
        assert pushed == own
        assert time.monotonic() - started < 2.5  # Within two ticks of one second.
        assert await alice.receive_nothing(timeout=1.5)  # No duplicate to the sender.
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_a_late_broadcast_of_a_replayed_message_is_not_sent_again(
    alice_cookie, bob_cookie, monkeypatch
):
    """The broadcast comes after the watcher pushed the message: bob gets it once.

    The room's publish is held back (Redis slow or just restarted) until the watcher's
    ticks have replayed the message to bob; the held broadcast then reaches him too.
    """
    from channels.layers import get_channel_layer

    alice = await join("lobby", alice_cookie)
    bob = await join("lobby", bob_cookie)
    layer = get_channel_layer()
    original = layer.group_send
    release = asyncio.Event()

    async def late(group: str, message: dict) -> None:
        if message.get("type") == "chat.message":
            await release.wait()
        await original(group, message)

    try:
        monkeypatch.setattr(layer, "group_send", late)
        await alice.send_json_to({"type": "chat.message", "text": "held back"})
        pushed = await bob.receive_json_from(timeout=DEADLINE)
        assert pushed["text"] == "held back"
        release.set()
        own = await alice.receive_json_from(timeout=TIMEOUT)  # Alice's broadcast copy.
        assert own == pushed
        assert await bob.receive_nothing(timeout=1.0)

        # Later messages still come live, and once each.
        await alice.send_json_to({"type": "chat.message", "text": "on time"})
        live = await bob.receive_json_from(timeout=TIMEOUT)
        assert live["text"] == "on time"
        assert await bob.receive_nothing(timeout=0.3)
    finally:
        release.set()
        await alice.disconnect()
        await bob.disconnect()


async def test_a_broadcast_after_the_clients_catch_up_is_not_sent_again(
    alice_cookie, bob_cookie, monkeypatch
):
    """bob's chat.catchup reads a message whose broadcast has not reached him yet."""
    from channels.layers import get_channel_layer

    alice = await join("lobby", alice_cookie)
    bob = await join("lobby", bob_cookie)
    layer = get_channel_layer()
    original = layer.group_send
    release = asyncio.Event()

    async def late(group: str, message: dict) -> None:
        if message.get("type") == "chat.message":
            await release.wait()
        await original(group, message)

    try:
        await alice.send_json_to({"type": "chat.message", "text": "first"})
        first = await bob.receive_json_from(timeout=TIMEOUT)
        assert (await alice.receive_json_from(timeout=TIMEOUT)) == first
        monkeypatch.setattr(layer, "group_send", late)
        await alice.send_json_to({"type": "chat.message", "text": "second"})
        await asyncio.sleep(0.2)  # Stored; its broadcast waits.
        await bob.send_json_to({"type": "chat.catchup", "after": first["id"]})
        replayed = await bob.receive_json_from(timeout=TIMEOUT)
        assert replayed["text"] == "second"
        release.set()
        assert (await alice.receive_json_from(timeout=TIMEOUT))["id"] == replayed["id"]
        assert await bob.receive_nothing(timeout=1.0)
    finally:
        release.set()
        await alice.disconnect()
        await bob.disconnect()
