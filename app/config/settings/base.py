"""Settings shared by every environment.

Everything that differs between hosts comes from the environment through
django-environ; the modules next to this one (development, production, test)
decide which variables are required and what the safe defaults are. The full
list of variables is in app/README.md.
"""

import socket
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

# app/, the folder that holds manage.py.
BASE_DIR = Path(__file__).resolve().parents[2]

env = environ.Env()

CHANNEL_LAYER_BACKENDS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}


def require_env(name: str) -> str:
    """Return the environment variable ``name``, which must be set and non-blank.

    Args:
        name: the variable's name, e.g. ``"SECRET_KEY"``.

    Raises:
        ImproperlyConfigured: the variable is missing or blank; the message names it.
    """
    value = env.str(name, default="")
    if not value.strip():
        raise ImproperlyConfigured(
            f"The {name} environment variable is required with these settings "
            "(see app/README.md, 'Configuration')."
        )
    return value


def database_from_url(url: str) -> dict[str, Any]:
    """Build a ``DATABASES`` entry from a database URL.

    PostgreSQL connections get a 3 second connect timeout unless the URL sets
    ``?connect_timeout=N`` itself, so a dead server fails fast (the health check
    relies on it), and persistent connections are checked before reuse.

    Args:
        url: e.g. ``postgres://chat:secret@db.internal:5432/chat`` or ``sqlite:///path.db``.

    Raises:
        ImproperlyConfigured: the URL's scheme is not a known database.
    """
    config = env.db_url_config(url)
    config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    config["CONN_HEALTH_CHECKS"] = True
    if "postgresql" in config["ENGINE"]:
        config.setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
    return config


def channel_layers(redis_url: str | None) -> dict[str, Any]:
    """Build ``CHANNEL_LAYERS`` for a Redis URL, or the in-memory layer without one.

    ``CHANNEL_LAYER`` picks the Redis layer: ``pubsub`` (default) or ``core``;
    ``CHANNEL_CAPACITY`` (messages, default 100) bounds each channel of the core layer.

    Args:
        redis_url: e.g. ``redis://chat:secret@127.0.0.1:6379/0``; ``None`` selects the
            in-memory layer, which only works inside one process (development only).

    Raises:
        ImproperlyConfigured: ``CHANNEL_LAYER`` names an unknown layer.
    """
    if not redis_url:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    kind = env.str("CHANNEL_LAYER", default="pubsub").strip().lower()
    if kind not in CHANNEL_LAYER_BACKENDS:
        raise ImproperlyConfigured(
            f"CHANNEL_LAYER must be one of {', '.join(CHANNEL_LAYER_BACKENDS)}, not {kind!r}."
        )
    config: dict[str, Any] = {"hosts": [redis_url]}
    if kind == "core":
        config["capacity"] = env.int("CHANNEL_CAPACITY", default=100)
    return {"default": {"BACKEND": CHANNEL_LAYER_BACKENDS[kind], "CONFIG": config}}


# Hosts and origins ----------------------------------------------------------

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])


def websocket_origins(allowed_hosts: list[str], scheme: str, port: int | None = None) -> list[str]:
    """Derive the origins WebSocket handshakes may come from when CHAT_ALLOWED_ORIGINS is unset.

    Each host of ``allowed_hosts`` becomes ``<scheme>://<host>[:<port>]``; a host
    starting with ``.`` keeps it (it then matches its subdomains too), and ``*``
    is dropped (it would allow any site).

    Args:
        allowed_hosts: the ALLOWED_HOSTS setting.
        scheme: ``https`` (production, behind nginx) or ``http`` (development).
        port: a port other than the scheme's default, e.g. 8000 for runserver.
    """
    suffix = f":{port}" if port else ""
    return [f"{scheme}://{host}{suffix}" for host in allowed_hosts if host != "*"]


# Applications -----------------------------------------------------------------

# No "daphne" here: its app config imports twisted and installs its reactor,
# which costs every gunicorn worker about 25 MiB of memory and half a second of
# start-up for nothing. Development adds it (see development.py).
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "accounts",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Accounts ---------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "accounts:login"

# Internationalisation -----------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static and uploaded files ------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))

# Security that holds everywhere -------------------------------------------------

# The load balancer's health check calls /healthz over a local socket, in plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Logging: one line per record on stderr, which systemd sends to the journal. --------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Keep Django's request errors, but not its per-request debug chatter.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}

# Chat -------------------------------------------------------------------------------

# Redis URL of the channel layer, also pinged by /healthz. None: in-memory layer.
REDIS_URL: str | None = None

# WebSocket limits per user (all of a user's sockets, on every daphne process and host):
# at most this many open at once (a further one is closed with 4429) ...
CHAT_WS_MAX_PER_USER = env.int("CHAT_WS_MAX_PER_USER", default=10)
# ... and one frame budget: a burst of this many frames, then this many per second.
CHAT_WS_RATE_BURST = env.int("CHAT_WS_RATE_BURST", default=10)
CHAT_WS_RATE_PER_SECOND = env.float("CHAT_WS_RATE_PER_SECOND", default=5.0)
# Seconds between two checks, per daphne process, for messages a connection missed.
CHAT_RESYNC_INTERVAL = env.float("CHAT_RESYNC_INTERVAL", default=1.0)

# Name of this server among those sharing the channel layer: its chat connections join
# a group named from it, which `manage.py close_websockets` closes before a restart.
CHAT_SERVER_ID = env.str("CHAT_SERVER_ID", default="").strip() or socket.gethostname()
