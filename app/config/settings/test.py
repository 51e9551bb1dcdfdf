"""Test settings, used by pytest (see pyproject.toml).

Tests run against a real PostgreSQL and a real Redis that the test harness
starts (tests/conftest.py); it fills in their addresses, so the URLs below are
only placeholders. The Redis layer is the one ``CHANNEL_LAYER`` selects.
"""

from .base import *

DEBUG = False

SECRET_KEY = "test-only-key-for-pytest-with-no-value-anywhere-else"  # noqa: S105

ALLOWED_HOSTS = ["testserver"]
CHAT_ALLOWED_ORIGINS = ["http://testserver"]

DATABASES = {"default": database_from_url("postgres://postgres@localhost:5432/chat")}
DATABASES["default"]["CONN_MAX_AGE"] = 0

REDIS_URL = "redis://127.0.0.1:6379/0"
CHANNEL_LAYERS = channel_layers(REDIS_URL)
CACHES = cache_from_url(REDIS_URL)
# As in production: sessions in PostgreSQL, read from their copy in Redis.
SESSION_ENGINE = "chat.session_store"

# Fast hashing: the tests create many users and passwords are not what they test.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
