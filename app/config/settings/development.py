"""Development settings: ``python manage.py runserver`` with nothing else running.

Defaults to SQLite in app/db.sqlite3 and, without ``REDIS_URL``, to the in-memory
channel layer, which only delivers messages inside the one runserver process.
Set ``DATABASE_URL`` / ``REDIS_URL`` to try the real services.
"""

from .base import *

DEBUG = True

# First, so that `runserver` is Daphne's and serves WebSockets too.
INSTALLED_APPS = ["daphne", *INSTALLED_APPS]

# Development only: production reads SECRET_KEY from the environment with no default.
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-development-only-not-a-secret")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# runserver's address: http:// and each of ALLOWED_HOSTS, on port 8000.
CHAT_ALLOWED_ORIGINS = env.list(
    "CHAT_ALLOWED_ORIGINS", default=websocket_origins(ALLOWED_HOSTS, "http", 8000)
)

DATABASES = {
    "default": database_from_url(
        env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    )
}

REDIS_URL = env.str("REDIS_URL", default="") or None
CHANNEL_LAYERS = channel_layers(REDIS_URL)
CACHES = cache_from_url(REDIS_URL)
# Without Redis the per-address counters live in each process (E003: not shared).
if not REDIS_URL:
    SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "django_ratelimit.E003"]
