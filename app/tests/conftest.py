"""Test harness: a real PostgreSQL and a real Redis for the whole session.

Both servers are started here and stopped at the end of the session (see
tests/servers.py). Settings are loaded before fixtures run, so the fixtures
point them at the servers: the database entry in place (pytest-django's
``django_db_modify_db_settings`` hook), ``REDIS_URL``, ``CHANNEL_LAYERS`` and
``CACHES`` through ``override_settings``, which also resets channels' layer
cache. Each test gets a cache key prefix of its own, so the per-address budgets
of one test never spill into the next.
"""

import copy
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.test import override_settings

from config.settings.base import cache_from_url, channel_layers
from tests.helpers import PASSWORD
from tests.servers import PostgresServer, RedisServer, ServerError


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session, on a unix socket in a temporary folder."""
    try:
        server = PostgresServer()
        server.start()
    except ServerError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(postgres_server: PostgresServer) -> None:
    """Point Django's default database at the session's PostgreSQL server."""
    settings.DATABASES["default"].update(
        HOST=postgres_server.socket_dir,
        PORT=str(postgres_server.port),
        USER=postgres_server.superuser,
        PASSWORD="",
        NAME="chat",
    )


@pytest.fixture(scope="session", autouse=True)
def redis_server() -> Iterator[RedisServer]:
    """A Redis server for the session; the app's settings point at it.

    Tests may ``stop()`` and ``start()`` it again (same port and password).
    """
    layer = os.environ.get("CHANNEL_LAYER", "pubsub")
    try:
        server = RedisServer(layer)
        server.start()
    except ServerError as error:
        pytest.fail(str(error), pytrace=False)
    overrides = override_settings(
        REDIS_URL=server.url,
        CHANNEL_LAYERS=channel_layers(server.url),
        CACHES=cache_from_url(server.url),
    )
    overrides.enable()
    try:
        yield server
    finally:
        overrides.disable()
        server.cleanup()


@pytest.fixture(autouse=True)
def own_cache_prefix(redis_server: RedisServer) -> Iterator[None]:
    """Give the test cache keys of its own: ``cache:<random>:...``, inside the ACL's ``cache:*``."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"cache:{uuid.uuid4().hex}"
    with override_settings(CACHES=caches):
        yield


@pytest.fixture
def make_user(django_user_model: type[AbstractBaseUser]) -> Callable[[str], AbstractBaseUser]:
    """Return a function that creates a user with the password PASSWORD."""

    def make(username: str) -> AbstractBaseUser:
        return django_user_model.objects.create_user(username=username, password=PASSWORD)

    return make


@pytest.fixture
def alice_cookie(make_user) -> str:
    """Session cookie of a new user ``alice``, for WebSocket tests."""
    from tests.helpers import session_cookie

    return session_cookie(make_user("alice"))


@pytest.fixture
def bob_cookie(make_user) -> str:
    """Session cookie of a new user ``bob``, for WebSocket tests."""
    from tests.helpers import session_cookie

    return session_cookie(make_user("bob"))


@pytest.fixture(autouse=True)
def history_cache_trusted() -> Iterator[None]:
    """Each test starts with a process that trusts the history cache (an outage leaves a pause)."""
    from chat import history

    history._retry_after = 0.0
    yield
    history._retry_after = 0.0


@pytest.fixture
def alice(make_user) -> AbstractBaseUser:
    """A user ``alice`` with the password PASSWORD."""
    return make_user("alice")


@pytest.fixture
def alice_client(client, alice):
    """Django's test client logged in as ``alice``."""
    client.force_login(alice)
    return client
