"""Sessions in PostgreSQL, read from their copy in Redis (chat/session_store.py)."""

import time

import pytest
from django.conf import settings
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import session_store

pytestmark = pytest.mark.django_db(transaction=True)


def session_queries(client, path="/"):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return [q["sql"] for q in queries.captured_queries if "django_session" in q["sql"]]


def test_settings_select_the_store():
    assert settings.SESSION_ENGINE == "chat.session_store"


def test_a_request_reads_its_session_from_the_cache(alice_client):
    key = alice_client.cookies[settings.SESSION_COOKIE_NAME].value
    assert cache.get(KEY_PREFIX + key) is not None
    assert session_queries(alice_client) == []


def test_a_logout_removes_the_session_from_both_stores(alice_client):
    key = alice_client.cookies[settings.SESSION_COOKIE_NAME].value

    assert alice_client.post("/accounts/logout/").status_code == 302

    assert cache.get(KEY_PREFIX + key) is None
    assert not Session.objects.filter(session_key=key).exists()
    alice_client.cookies[settings.SESSION_COOKIE_NAME] = key
    assert alice_client.get("/").status_code == 302  # To the login page.


def test_a_session_missing_from_the_cache_is_read_from_the_database_and_copied(alice_client):
    key = alice_client.cookies[settings.SESSION_COOKIE_NAME].value
    cache.delete(KEY_PREFIX + key)

    assert session_queries(alice_client)
    assert cache.get(KEY_PREFIX + key) is not None
    assert session_queries(alice_client) == []


def test_pages_and_logins_work_while_redis_is_down(alice_client, client, make_user, redis_server):
    make_user("bob")
    redis_server.stop()
    try:
        assert session_queries(alice_client, "/chat/lobby/")  # From the database.
        response = client.post(
            "/accounts/login/", {"username": "bob", "password": "correct horse battery staple"}
        )
        assert response.status_code == 302
        assert client.get("/").status_code == 200
    finally:
        redis_server.start()


def test_a_logout_while_redis_is_down_answers_503_and_leaves_the_session_whole(
    alice_client, redis_server
):
    """Half a logout (gone from the database, still in Redis) would come back with Redis."""
    key = alice_client.cookies[settings.SESSION_COOKIE_NAME].value
    redis_server.stop()
    try:
        response = alice_client.post("/accounts/logout/")
        assert response.status_code == 503
        assert int(response["Retry-After"]) > 0
        assert b"Traceback" not in response.content
        assert Session.objects.filter(session_key=key).exists()
    finally:
        redis_server.start()

    alice_client.cookies[settings.SESSION_COOKIE_NAME] = key
    assert alice_client.get("/").status_code == 200  # Still logged in: nothing half done.
    assert alice_client.post("/accounts/logout/").status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    assert cache.get(KEY_PREFIX + key) is None


def test_the_copy_expires_long_before_the_session(client, make_user, monkeypatch):
    """A session deleted from the database behind the app's back stops within CACHE_SECONDS."""
    assert session_store.CACHE_SECONDS < settings.SESSION_COOKIE_AGE
    monkeypatch.setattr(session_store, "CACHE_SECONDS", 1)
    client.force_login(make_user("alice"))
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert cache.get(KEY_PREFIX + key) is not None
    time.sleep(1.5)
    assert cache.get(KEY_PREFIX + key) is None
    Session.objects.filter(session_key=key).delete()  # Behind the app's back.
    assert client.get("/").status_code == 302
