"""Settings shared by every environment.

Everything that differs between hosts comes from the environment through
django-environ; the modules next to this one (development, production, test)
decide which variables are required and what the safe defaults are. The full
list of variables is in app/README.md.
"""

import ipaddress
import re
import socket
from datetime import timedelta
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
    They bind parameters server-side and prepare a query after it ran
    ``DATABASE_PREPARE_THRESHOLD`` times (default 5, psycopg's; bench/page_steps.py, three
    runs: PostgreSQL's CPU per room page 0.13-0.17 ms instead of 0.2-0.4, the request's
    wall time a third lower, its total CPU -22 %, +8 %, -6 %); -1: client-side binding,
    Django's default, which a transaction-mode connection pooler needs.

    Args:
        url: e.g. ``postgres://chat:secret@db.internal:5432/chat`` or ``sqlite:///path.db``.

    Raises:
        ImproperlyConfigured: the URL's scheme is not a known database.
    """
    config = env.db_url_config(url)
    config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    config["CONN_HEALTH_CHECKS"] = True
    if "postgresql" in config["ENGINE"]:
        options = config.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", 3)
        # Server-side parameter binding, and psycopg's prepared statements: a query run
        # PREPARE_THRESHOLD times on a connection is parsed and planned once from then on.
        threshold = env.int("DATABASE_PREPARE_THRESHOLD", default=5)
        if threshold >= 0:
            options["server_side_binding"] = True
            options["prepare_threshold"] = threshold
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


def cache_from_url(redis_url: str | None) -> dict[str, Any]:
    """Build ``CACHES``: Redis when there is a URL (the channel layer's), else process memory.

    The per-address limits keep their counters in this cache, the sessions a copy
    (chat/session_store.py) and the room pages their history (chat/history.py), so
    every process of every app host must share it: Redis. Keys start with ``cache:``
    (the app's Redis user needs ``~cache:*`` and GET, SET, INCRBY, EXISTS, DEL; see
    README). Redis gets 1 s to connect and 1 s to answer.

    Args:
        redis_url: e.g. ``redis://chat:secret@127.0.0.1:6379/0``; ``None``: in-process
            memory, which only counts inside one process (development only).
    """
    if not redis_url:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    return {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": "cache",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


_RATE = re.compile(r"[1-9][0-9]*/[1-9]?[0-9]*[smhd]")


def rate_from_env(name: str, default: str) -> str:
    """Read a rate such as ``10/h`` (10 per hour; units s, m, h, d, e.g. ``5/15m``).

    Raises:
        ImproperlyConfigured: the value is not such a rate; the message names the variable.
    """
    value = env.str(name, default=default).strip()
    if not _RATE.fullmatch(value):
        raise ImproperlyConfigured(f"{name} must be a rate such as 10/h, not {value!r}.")
    return value


def int_from_env(name: str, default: int, low: int, high: int) -> int:
    """Read an integer within ``low``..``high``.

    Raises:
        ImproperlyConfigured: not an integer, or out of range; the message names the variable.
    """
    try:
        value = env.int(name, default=default)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ImproperlyConfigured(f"{name} must be an integer from {low} to {high}.")
    return value


def networks_from_env(name: str, default: list[str]) -> list[str]:
    """Read a comma list of CIDRs (a bare address counts as one host).

    Raises:
        ImproperlyConfigured: an item is not a network; the message names the variable.
    """
    values = [item.strip() for item in env.list(name, default=default) if item.strip()]
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {value!r} is not an IP network.") from None
    return values


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
    # Django's admin with the password change limited (config/admin.py).
    "config.apps.ChatAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "django_ratelimit",
    "accounts",
    "chat",
]

MIDDLEWARE = [
    # Outermost: times the whole request, by view (chat/metrics.py).
    "chat.metrics.RequestMetricsMiddleware",
    # Next: everything after it sees the client's address in REMOTE_ADDR.
    "config.middleware.ClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before authentication: sessions survive a SECRET_KEY rotation under their key.
    "config.middleware.SessionHashRenewalMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    # A view that fails on an unreachable PostgreSQL or Redis answers 503, not 500.
    "config.middleware.ServiceUnavailableMiddleware",
    # Last, as axes requires: turns a lockout during the view into its 429.
    "axes.middleware.AxesMiddleware",
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

# Axes first: it refuses a locked-out account before any password is hashed.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "accounts:login"

# Limits on password hashing (accounts/throttle.py) --------------------------------

# Peers whose X-Real-IP header is the client's address: nginx. A peer on a unix
# socket always is; over TCP, the web hosts (config.middleware.ClientAddressMiddleware).
CHAT_TRUSTED_PROXIES = networks_from_env("CHAT_TRUSTED_PROXIES", ["127.0.0.1/32", "::1/128"])
# Per-address budgets count an IPv4 address (/32) or an IPv6 network (/64) as one client.
CHAT_IPV4_PREFIX = int_from_env("CHAT_IPV4_PREFIX", 32, 8, 32)
CHAT_IPV6_PREFIX = int_from_env("CHAT_IPV6_PREFIX", 64, 32, 128)
# POSTs to sign-up, and to password change, per client address.
CHAT_SIGNUP_RATE = rate_from_env("CHAT_SIGNUP_RATE", "10/h")
CHAT_PASSWORD_CHANGE_RATE = rate_from_env("CHAT_PASSWORD_CHANGE_RATE", "10/h")
# Failed logins (or wrong current passwords) of one account, from anywhere, after
# which it is locked out until they are older than the cool-off.
CHAT_LOGIN_FAILURE_LIMIT = int_from_env("CHAT_LOGIN_FAILURE_LIMIT", 5, 1, 1000)
CHAT_LOGIN_COOLOFF_SECONDS = int_from_env("CHAT_LOGIN_COOLOFF_SECONDS", 900, 1, 7 * 86400)

# django-axes: per account only (addresses are nginx's and the budgets' concern).
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_FAILURE_LIMIT = CHAT_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=CHAT_LOGIN_COOLOFF_SECONDS)
# A refused attempt does not push the end of the lockout further (its
# Retry-After stays true); a successful login clears the account's failures.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.throttle.lockout_response"
# REMOTE_ADDR only, even if django-ipware gets installed one day.
AXES_CLIENT_IP_CALLABLE = "accounts.throttle.client_ip"
# No row per successful login (it would grow for ever); failures are kept as
# long as the cool-off needs them. No password field reaches the database.
AXES_DISABLE_ACCESS_LOG = True
AXES_SENSITIVE_PARAMETERS = [
    "username",
    "ip_address",
    "password",
    "password1",
    "password2",
    "old_password",
    "new_password1",
    "new_password2",
]

# django-ratelimit: counters in the default cache; a failed count lets the request
# through (see accounts.throttle: nginx still limits per address).
RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = True

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
        # Axes says "login failed" and "cleaned up" at INFO on every login; its
        # warnings (each failure, each lockout) are what an operator needs.
        "axes": {"level": LOG_LEVEL if LOG_LEVEL in ("ERROR", "CRITICAL") else "WARNING"},
    },
}

# Checks -----------------------------------------------------------------------------

# django-ratelimit knows Django's own Redis cache no better than "not officially
# supported" (W001); it is shared and increments atomically (INCRBY). Axes warns
# that its lockout ignores addresses (W006): a choice, addresses are limited by
# rate (nginx, and the budgets above), while locking an address out for failures
# on any account would lock out everyone behind a shared NAT address.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001", "axes.W006"]

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
# Seconds a room page's rendered history stays in the cache at most (chat/history.py); a
# stored message replaces it at once. 0: no cache, every page reads the database.
CHAT_HISTORY_CACHE_SECONDS = int_from_env("CHAT_HISTORY_CACHE_SECONDS", 60, 0, 86400)

# Name of this server among those sharing the channel layer: its chat connections join
# a group named from it, which `manage.py close_websockets` closes before a restart.
CHAT_SERVER_ID = env.str("CHAT_SERVER_ID", default="").strip() or socket.gethostname()
