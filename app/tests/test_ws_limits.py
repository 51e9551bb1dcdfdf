"""Per-user WebSocket limits and sockets that close when their session ends.

Over the full ASGI stack with the real Redis (limits and channel layer) and PostgreSQL.
"""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client, override_settings

from chat import limits
from chat.consumers import CLOSE_TOO_MANY_SOCKETS, CLOSE_UNAUTHENTICATED
from chat.models import Message
from tests.helpers import PASSWORD, TIMEOUT, communicator, join

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def closed_with(client: WebsocketCommunicator, within: float = TIMEOUT) -> dict:
    """Return the close the server sent within ``within`` seconds, skipping frames before it."""
    while True:
        output = await client.receive_output(timeout=within)
        if output["type"] == "websocket.close":
            return output


def logged_in(user) -> tuple[Client, str]:
    """A test client logged in as ``user`` (a session of its own) and its session cookie."""
    client = Client()
    client.force_login(user)
    return client, client.cookies[settings.SESSION_COOKIE_NAME].value


async def disconnect_all(clients: list[WebsocketCommunicator]) -> None:
    for client in clients:
        await client.disconnect()


async def test_user_beyond_the_socket_cap_is_closed_with_4429_and_others_are_not(
    alice_cookie, bob_cookie
):
    with override_settings(CHAT_WS_MAX_PER_USER=3):
        held = [await join(room, alice_cookie) for room in ("lobby", "kitchen", "lobby")]
        extra = communicator("garden", alice_cookie)
        connected, _ = await extra.connect(timeout=TIMEOUT)
        assert connected  # Accepted first, so that the browser sees the code.
        assert await extra.receive_output(timeout=TIMEOUT) == {
            "type": "websocket.close",
            "code": CLOSE_TOO_MANY_SOCKETS,
            "reason": "too many connections",
        }
        await extra.disconnect()
        bob = await join("lobby", bob_cookie)  # Another user has a count of their own.
        try:
            assert await held[0].receive_nothing(timeout=0.2)
            # Closing one frees its place.
            await held.pop().disconnect()
            again = await join("garden", alice_cookie)
            held.append(again)
            assert await again.receive_nothing(timeout=0.3)
        finally:
            await disconnect_all([*held, bob])


async def test_sockets_of_a_crashed_process_stop_counting_after_their_ttl(make_user, monkeypatch):
    """A process that dies keeps no socket alive: its entries expire, unrenewed."""
    alice = await database_sync_to_async(make_user)("alice")
    _, cookie = await database_sync_to_async(logged_in)(alice)
    monkeypatch.setattr(limits, "SOCKET_TTL_SECONDS", 1)
    with override_settings(CHAT_WS_MAX_PER_USER=2):
        # A process registered two sockets of alice, then was killed (no disconnect).
        for n in range(2):
            assert await limits.register_socket(alice.pk, f"crashed-{n}", 2)
        refused = communicator("lobby", cookie)
        await refused.connect(timeout=TIMEOUT)
        assert (await refused.receive_output(timeout=TIMEOUT))["code"] == CLOSE_TOO_MANY_SOCKETS
        await refused.disconnect()

        await asyncio.sleep(1.2)
        client = await join("lobby", cookie)
        try:
            assert await client.receive_nothing(timeout=0.3)
        finally:
            await client.disconnect()


async def test_frame_budget_is_shared_by_all_sockets_of_a_user(alice_cookie, bob_cookie):
    sockets = [await join("lobby", alice_cookie) for _ in range(5)]
    bob = await join("lobby", bob_cookie)
    try:
        for n in range(50):
            await sockets[n % 5].send_json_to({"type": "chat.message", "text": f"flood {n}"})
        refused = []
        for client in sockets:  # Each socket: errors for its own refused frames, every broadcast.
            while not await client.receive_nothing(timeout=0.5):
                frame = await client.receive_json_from()
                if frame["type"] == "error":
                    refused.append(frame)
        assert {frame["code"] for frame in refused} == {"rate_limited"}
        stored = await Message.objects.filter(author__username="alice").acount()
        # One burst of 10 for the user, plus what refills (5 per second) while they go out.
        assert 10 <= stored <= 15, stored
        assert len(refused) == 50 - stored
        # bob's budget is his own.
        await bob.send_json_to({"type": "chat.message", "text": "mine"})
        while (frame := await bob.receive_json_from(timeout=TIMEOUT))["author"] != "bob":
            assert frame["type"] == "chat.message"
        assert frame["text"] == "mine"
    finally:
        await disconnect_all([*sockets, bob])


async def test_logout_closes_that_sessions_sockets_with_4401_within_a_second(make_user):
    alice = await database_sync_to_async(make_user)("alice")
    browser, cookie = await database_sync_to_async(logged_in)(alice)
    _, phone_cookie = await database_sync_to_async(logged_in)(alice)
    lobby, kitchen = await join("lobby", cookie), await join("kitchen", cookie)
    phone = await join("lobby", phone_cookie)
    try:
        started = time.monotonic()
        response = await database_sync_to_async(browser.post)("/accounts/logout/")
        assert response.status_code == 302
        for client in (lobby, kitchen):
            closing = await closed_with(client, within=1.0)
            assert (closing["code"], closing["reason"]) == (CLOSE_UNAUTHENTICATED, "logged out")
        assert time.monotonic() - started < 1.0
        # The phone's session was not logged out: its socket stays and works.
        assert await phone.receive_nothing(timeout=0.6)
        await phone.send_json_to({"type": "chat.message", "text": "still in"})
        assert (await phone.receive_json_from(timeout=TIMEOUT))["text"] == "still in"
    finally:
        await disconnect_all([lobby, kitchen, phone])


@pytest.mark.parametrize("change", ["password", "deactivation", "deletion"])
async def test_password_change_deactivation_and_deletion_close_all_sockets_with_4401(
    make_user, change
):
    alice = await database_sync_to_async(make_user)("alice")
    cookies = [(await database_sync_to_async(logged_in)(alice))[1] for _ in range(2)]
    clients = [await join("lobby", cookie) for cookie in cookies]

    @database_sync_to_async
    def apply() -> None:
        if change == "password":
            alice.set_password("another horse battery staple")
            alice.save()
        elif change == "deactivation":
            alice.is_active = False
            alice.save()
        else:
            alice.delete()

    try:
        started = time.monotonic()
        await apply()
        for client in clients:
            closing = await closed_with(client, within=1.0)
            assert (closing["code"], closing["reason"]) == (CLOSE_UNAUTHENTICATED, "session ended")
        assert time.monotonic() - started < 1.0
    finally:
        await disconnect_all(clients)


async def test_changing_ones_own_password_closes_the_old_session_and_the_new_one_connects(
    make_user,
):
    """Django gives the changer's browser a new session key; its old socket closes, 4401."""

    @database_sync_to_async
    def staff_alice():
        user = make_user("alice")
        user.is_staff = True
        user.save()
        return logged_in(user)

    browser, cookie = await staff_alice()
    client = await join("lobby", cookie)
    again = None
    try:
        new = "a brand new horse battery staple"
        response = await database_sync_to_async(browser.post)(
            "/admin/password_change/",
            {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
        )
        assert response.status_code == 302, response.content[:500]
        closing = await closed_with(client, within=1.0)
        assert (closing["code"], closing["reason"]) == (CLOSE_UNAUTHENTICATED, "session ended")
        new_cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
        assert new_cookie != cookie
        again = await join("lobby", new_cookie)
        await again.send_json_to({"type": "chat.message", "text": "same browser"})
        assert (await again.receive_json_from(timeout=TIMEOUT))["text"] == "same browser"
    finally:
        await client.disconnect()
        if again is not None:
            await again.disconnect()


async def test_a_socket_whose_session_is_gone_cannot_post(alice_cookie):
    client = await join("lobby", alice_cookie)
    try:
        # Sessions removed behind the app's back (clearsessions, a flush): no signal.
        await Session.objects.all().adelete()
        await client.send_json_to({"type": "chat.message", "text": "after logout"})
        closing = await closed_with(client)
        assert closing["code"] == CLOSE_UNAUTHENTICATED
        assert not await Message.objects.filter(text="after logout").aexists()
    finally:
        await client.disconnect()
