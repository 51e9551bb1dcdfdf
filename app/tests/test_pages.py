"""The index and room pages."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from chat.models import Message, Room
from chat.views import HISTORY_LENGTH

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/chat/lobby/"])
def test_pages_need_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_room_page_shows_last_50_messages_oldest_first(alice_client, alice):
    room = Room.objects.create(name="lobby")
    Message.objects.bulk_create(
        Message(room=room, author=alice, text=f"msg-{n:03d}") for n in range(HISTORY_LENGTH + 1)
    )
    other = Room.objects.create(name="kitchen")
    Message.objects.create(room=other, author=alice, text="other-room")

    response = alice_client.get("/chat/lobby/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "msg-000" not in page  # The 51st newest is left out.
    assert "other-room" not in page
    shown = [f"msg-{n:03d}" for n in range(1, HISTORY_LENGTH + 1)]
    positions = [page.index(text) for text in shown]
    assert positions == sorted(positions)
    assert [message["text"] for message in response.context["history"]] == shown


def test_room_history_items_are_the_live_frames(alice_client, alice):
    """The page renders the same fields a live ``chat.message`` frame carries."""
    room = Room.objects.create(name="lobby")
    sent_at = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    message = Message.objects.create(room=room, author=alice, text="<b>hi</b> & bye")
    Message.objects.filter(pk=message.pk).update(sent_at=sent_at)
    message.refresh_from_db()

    (item,) = Message.objects.history("lobby", HISTORY_LENGTH)
    page = alice_client.get("/chat/lobby/").content.decode()

    assert item == {**message.as_frame(), "shown_at": "2026-03-04 05:06"}
    assert f'<li class="message" data-message-id="{message.pk}">' in page
    assert '<span class="author">alice</span>' in page
    assert '<time datetime="2026-03-04T05:06:07.890Z">2026-03-04 05:06 UTC</time>' in page
    assert "&lt;b&gt;hi&lt;/b&gt; &amp; bye" in page
    assert "<b>hi</b>" not in page


def test_room_page_works_for_a_room_without_messages(alice_client):
    response = alice_client.get("/chat/new-room_1/")
    assert response.status_code == 200
    assert b"No messages yet." in response.content
    assert not Room.objects.filter(name="new-room_1").exists()  # GET creates nothing.


def test_room_page_serves_its_script_and_config_without_external_assets(alice_client):
    page = alice_client.get("/chat/lobby/").content.decode()
    assert '<script id="chat-config" type="application/json">' in page
    assert "/static/chat/room.js" in page
    assert "https://" not in page and "//cdn" not in page


def test_room_page_gives_its_script_the_close_codes(alice_client):
    page = alice_client.get("/chat/lobby/").content.decode()
    start = page.index('<script id="chat-config" type="application/json">')
    config = json.loads(page[page.index(">", start) + 1 : page.index("</script>", start)])
    assert config["closeCodes"] == {
        "unauthenticated": 4401,
        "invalidRoom": 4400,
        "tooManySockets": 4429,
        "serviceRestart": 1012,
        "serviceRestartPrivate": 4012,
    }


@pytest.mark.parametrize(
    "path", ["/chat/bad$name/", "/chat/with%20space/", f"/chat/{'x' * 65}/", "/chat/caf%C3%A9/"]
)
def test_invalid_room_name_in_url_is_404(alice_client, path):
    assert alice_client.get(path).status_code == 404


def test_index_lists_rooms_by_last_activity(alice_client):
    now = timezone.now()
    for name, minutes_ago in [("quiet", 90), ("busy", 1), ("middle", 30)]:
        Room.objects.create(name=name, last_activity_at=now - timedelta(minutes=minutes_ago))

    response = alice_client.get("/")

    assert response.status_code == 200
    assert [room.name for room in response.context["rooms"]] == ["busy", "middle", "quiet"]
    page = response.content.decode()
    assert page.index("#busy") < page.index("#middle") < page.index("#quiet")


def test_index_form_creates_room_and_redirects_to_it(alice_client):
    response = alice_client.post("/", {"name": "team-42_x"})
    assert response.status_code == 302
    assert response["Location"] == "/chat/team-42_x/"
    assert Room.objects.filter(name="team-42_x").exists()


def test_index_form_enters_existing_room(alice_client):
    Room.objects.create(name="lobby")
    response = alice_client.post("/", {"name": "lobby"})
    assert response["Location"] == "/chat/lobby/"
    assert Room.objects.count() == 1


@pytest.mark.parametrize("name", ["", "bad name", "bad$name", "x" * 65, "café", "../etc"])
def test_index_form_rejects_invalid_room_name(alice_client, name):
    response = alice_client.post("/", {"name": name})
    assert response.status_code == 200
    assert response.context["form"].errors["name"]
    assert not Room.objects.exists()


def test_index_escapes_room_names_and_usernames(client, make_user):
    user = make_user("<b>bold</b>")
    client.force_login(user)
    page = client.get("/").content.decode()
    assert "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page


def test_pages_send_a_content_security_policy(alice_client):
    policy = alice_client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self' ws://testserver" in policy
