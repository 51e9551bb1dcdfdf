"""The room page's cached history (chat/history.py): served from Redis, never stale after a
change stored through the models, and never the reason for a failed page."""

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import history
from chat.models import Message, Room
from tests.helpers import TIMEOUT, join

# Real commits: the invalidation runs on commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def page(client, room="lobby"):
    response = client.get(f"/chat/{room}/")
    assert response.status_code == 200
    return response.content.decode()


def history_queries(client, room="lobby"):
    """Load the room page; return the SQL it ran against chat_message."""
    with CaptureQueriesContext(connection) as queries:
        page(client, room)
    return [q["sql"] for q in queries.captured_queries if "chat_message" in q["sql"]]


def test_second_page_load_is_served_from_the_cache(alice_client, alice):
    Message.post("lobby", alice, "first")
    assert history_queries(alice_client)  # Rendered from the database, then kept.

    assert history_queries(alice_client) == []
    assert "first" in page(alice_client)


def test_a_write_that_bypasses_the_models_shows_only_once_the_cache_expires(
    alice_client, alice, settings
):
    """Proof that a page can be served from the cache: what the signals do not see stays out."""
    message = Message.post("lobby", alice, "before")
    page(alice_client)
    Message.objects.filter(pk=message.pk).update(text="changed behind the cache")

    assert "changed behind the cache" not in page(alice_client)
    settings.CHAT_HISTORY_CACHE_SECONDS = 0  # No cache: the database's state.
    assert "changed behind the cache" in page(alice_client)


def test_a_stored_message_shows_on_the_next_page_load(alice_client, alice):
    Message.post("lobby", alice, "first")
    assert "first" in page(alice_client)

    Message.post("lobby", alice, "second")

    shown = page(alice_client)
    assert "first" in shown
    assert "second" in shown
    assert history_queries(alice_client) == []  # Cached again.


def test_a_message_sent_over_the_websocket_shows_on_the_next_page_load(alice_client, alice):
    cookie = alice_client.cookies[django_settings.SESSION_COOKIE_NAME].value

    async def send() -> None:
        client = await join("lobby", cookie)
        await client.send_json_to({"type": "chat.message", "text": "over the socket"})
        frame = await client.receive_json_from(timeout=TIMEOUT)
        assert frame["text"] == "over the socket"
        await client.disconnect()

    Message.post("lobby", alice, "earlier")
    assert "over the socket" not in page(alice_client)

    async_to_sync(send)()

    assert "over the socket" in page(alice_client)


def test_an_edited_or_deleted_message_shows_as_it_is_now(alice_client, alice):
    kept = Message.post("lobby", alice, "kept")
    edited = Message.post("lobby", alice, "typo")
    removed = Message.post("lobby", alice, "spam")
    page(alice_client)

    edited = Message.objects.get(pk=edited.pk)  # As the admin loads it: room not cached.
    edited.text = "fixed"
    edited.save()
    Message.objects.get(pk=removed.pk).delete()

    shown = page(alice_client)
    assert "fixed" in shown
    assert "typo" not in shown
    assert "spam" not in shown
    assert kept.text in shown


def test_deleting_a_room_or_an_author_empties_its_page(alice_client, alice, make_user):
    bob = make_user("bob")
    Message.post("lobby", bob, "from bob")
    Message.post("kitchen", alice, "in the kitchen")
    assert "from bob" in page(alice_client, "lobby")
    assert "in the kitchen" in page(alice_client, "kitchen")

    bob.delete()
    Room.objects.get(name="kitchen").delete()

    assert "from bob" not in page(alice_client, "lobby")
    assert "in the kitchen" not in page(alice_client, "kitchen")


def test_a_renamed_author_and_a_renamed_room_show_their_new_names(alice_client, alice, make_user):
    bob = make_user("bob")
    Message.post("lobby", bob, "hello")
    assert '<span class="author">bob</span>' in page(alice_client)

    bob.username = "robert"
    bob.save()
    assert '<span class="author">robert</span>' in page(alice_client)

    room = Room.objects.get(name="lobby")
    room.name = "hall"
    room.save()
    assert "hello" not in page(alice_client, "lobby")
    assert "hello" in page(alice_client, "hall")


def test_a_login_does_not_invalidate_the_rooms_of_the_user(alice_client, alice):
    Message.post("lobby", alice, "hello")
    page(alice_client)
    token = history.cache.get(history.token_key("lobby"))

    alice_client.force_login(alice)  # Saves last_login only.

    assert history.cache.get(history.token_key("lobby")) == token


def test_a_message_stored_while_a_page_renders_is_not_hidden_by_its_fragment(
    alice_client, alice, monkeypatch
):
    """The race: the page has read the database, a message commits, the page stores its
    (now old) fragment. The next page load must still show the message."""
    Message.post("lobby", alice, "first")
    render = history.render

    def render_then_store(room_name, limit):
        result = render(room_name, limit)
        Message.post(room_name, alice, "committed meanwhile")
        return result

    monkeypatch.setattr(history, "render", render_then_store)
    assert "committed meanwhile" not in page(alice_client)  # Its own render predates it.
    monkeypatch.setattr(history, "render", render)

    assert "committed meanwhile" in page(alice_client)


def test_the_page_renders_from_the_database_while_redis_is_down(alice_client, alice, redis_server):
    Message.post("lobby", alice, "first")
    page(alice_client)
    redis_server.stop()
    try:
        Message.post("lobby", alice, "while redis was down")  # Its invalidation fails.
        shown = page(alice_client)
        assert "first" in shown
        assert "while redis was down" in shown
        assert history._retry_after > 0  # This process leaves the cache alone for a while.
    finally:
        redis_server.start()

    # The restarted Redis holds nothing (no persistence): rendered, kept, served again.
    history._retry_after = 0.0
    assert "while redis was down" in page(alice_client)
    assert history_queries(alice_client) == []


def test_an_empty_room_keeps_nothing_in_the_cache(alice_client):
    assert "No messages yet." in page(alice_client, "nobody-here")
    assert history.cache.get(history.token_key("nobody-here")) is None
    assert history.cache.get(history.fragment_key("nobody-here")) is None


def test_the_cache_can_be_turned_off(alice_client, alice, settings):
    settings.CHAT_HISTORY_CACHE_SECONDS = 0
    Message.post("lobby", alice, "first")
    page(alice_client)
    assert history_queries(alice_client)
    assert history.cache.get(history.token_key("lobby")) is None
