"""SECRET_KEY rotation: sessions of the old key stay logged in, their WebSockets open.

A session is made under the old key; the settings then hold the new key with the
old one in SECRET_KEY_FALLBACKS, as a deployment in the middle of a rotation.
"""

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.test import Client, override_settings

from chat.consumers import CLOSE_UNAUTHENTICATED
from chat.sessions import session_is_valid
from tests.helpers import TIMEOUT, communicator, join, session_cookie

OLD_KEY = "old-key-test-only-" + "o" * 40
NEW_KEY = "new-key-test-only-" + "n" * 40

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def old_session(make_user) -> tuple[str, object]:
    """A user logged in while OLD_KEY was SECRET_KEY: (session key, user)."""
    user = make_user("carol")
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        key = session_cookie(user)
    return key, user


def page_with(cookie: str):
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = cookie
    return client.get("/")


def test_old_key_session_keeps_its_page_and_its_key(old_session):
    key, user = old_session
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        before = SessionStore(session_key=key).load()
    assert before
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        response = page_with(key)
        assert response.status_code == 200
        # No new session key (Django's get_user would cycle it): the same cookie still works.
        assert settings.SESSION_COOKIE_NAME not in response.cookies
        assert page_with(key).status_code == 200
        assert session_is_valid(key, user.pk)
    # Nothing written: a server still on the old key alone can read the session.
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        assert SessionStore(session_key=key).load() == before
        assert page_with(key).status_code == 200


def test_old_key_session_is_logged_out_without_the_fallback(old_session):
    key, _ = old_session
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]):
        response = page_with(key)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.asyncio
async def test_old_key_session_opens_a_websocket_that_stays_open(old_session):
    key, user = old_session
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        client = await join("rotation", key)
        try:
            await client.send_json_to({"type": "chat.message", "text": "still here"})
            frame = await client.receive_json_from(timeout=TIMEOUT)
            assert frame["type"] == "chat.message", frame
            assert frame["author"] == "carol"
        finally:
            await client.disconnect()
        assert await sync_to_async(session_is_valid)(key, user.pk)


@pytest.mark.asyncio
async def test_old_key_session_without_fallback_is_closed_with_4401(old_session):
    key, _ = old_session
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]):
        client = communicator("rotation", key)
        connected, _ = await client.connect(timeout=TIMEOUT)
        assert connected
        closing = await client.receive_output(timeout=TIMEOUT)
        assert closing["type"] == "websocket.close"
        assert closing["code"] == CLOSE_UNAUTHENTICATED


def test_resign_sessions_frees_every_session_from_the_old_key(old_session, capsys):
    key, _ = old_session
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        call_command("resign_sessions")
        assert "re-signed 1 of 1 sessions" in capsys.readouterr().out
        call_command("resign_sessions")
        assert "re-signed 0 of 1 sessions" in capsys.readouterr().out
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]):
        assert page_with(key).status_code == 200
