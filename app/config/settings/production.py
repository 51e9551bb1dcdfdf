"""Production settings: the default of config.asgi and config.wsgi.

SECRET_KEY_FALLBACKS (optional, a comma list) holds the previous secret keys
while a new one takes over. Start-up stops with ImproperlyConfigured naming
the variable when SECRET_KEY,
DATABASE_URL, REDIS_URL or ALLOWED_HOSTS is missing. TLS ends at nginx, which
must set ``X-Forwarded-Proto`` (and overwrite any value a client sent).
"""

from .base import *

DEBUG = False

SECRET_KEY = require_env("SECRET_KEY")
# Previous keys, newest first, while a new SECRET_KEY takes over: what they
# signed still verifies, and their sessions stay logged in (chat/sessions.py).
SECRET_KEY_FALLBACKS = [key for key in env.list("SECRET_KEY_FALLBACKS", default=[]) if key.strip()]
require_env("ALLOWED_HOSTS")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
# WebSocket Origin headers must equal one of these (scheme, host and port); by default
# https:// and each of ALLOWED_HOSTS, on port 443.
CHAT_ALLOWED_ORIGINS = env.list(
    "CHAT_ALLOWED_ORIGINS", default=websocket_origins(ALLOWED_HOSTS, "https")
)
DATABASES = {"default": database_from_url(require_env("DATABASE_URL"))}
REDIS_URL = require_env("REDIS_URL")
CHANNEL_LAYERS = channel_layers(REDIS_URL)
CACHES = cache_from_url(REDIS_URL)
# Sessions stay in PostgreSQL; requests read them from a copy in Redis (chat/session_store.py).
SESSION_ENGINE = "chat.session_store"

# HTTPS: nginx terminates TLS and tells Django the original scheme.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

# HSTS: one year by default. Preloading is a commitment that is hard to undo, so
# it stays off unless SECURE_HSTS_PRELOAD=true; while it is off, Django's reminder
# to turn it on (security.W021) is a decision taken, not a problem to report.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [
    *SILENCED_SYSTEM_CHECKS,
    *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),
]

# collectstatic writes hashed names, so nginx can cache static files for long.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
    },
}
