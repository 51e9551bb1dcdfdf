"""Settings: production checks run in a subprocess with a production environment."""

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

APP_DIR = Path(__file__).resolve().parent.parent

# Variables the app reads; cleared so that the caller's environment cannot leak in.
APP_VARIABLES = {
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "DATABASE_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "STATIC_ROOT",
    "MEDIA_ROOT",
    "CONN_MAX_AGE",
    "CHANNEL_LAYER",
    "CHAT_ALLOWED_ORIGINS",
    "CHAT_WS_MAX_PER_USER",
    "CHAT_WS_RATE_BURST",
    "CHAT_WS_RATE_PER_SECOND",
    "CHAT_RESYNC_INTERVAL",
    "CHANNEL_CAPACITY",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_PRELOAD",
    "LOG_LEVEL",
    "CHAT_SERVER_ID",
    "CHAT_HISTORY_CACHE_SECONDS",
    "DATABASE_PREPARE_THRESHOLD",
}


def production_env(**changes: str | None) -> dict[str, str]:
    """A production environment as a deployment writes it, with ``changes`` (None: unset)."""
    env = {key: value for key, value in os.environ.items() if key not in APP_VARIABLES}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL="postgres://chat:secret@db.internal:5432/chat",
        REDIS_URL="redis://chat:secret@127.0.0.1:6379/0",
        ALLOWED_HOSTS="chat.example.com",
        CSRF_TRUSTED_ORIGINS="https://chat.example.com",
        STATIC_ROOT="/srv/chat/static",
        MEDIA_ROOT="/srv/chat/media",
    )
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_in_app(["manage.py", *args], env=env)


def run_in_app(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run this Python with ``args`` in app/ and ``env``; output captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=APP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_deploy_is_clean_with_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stderr


def test_check_deploy_with_hsts_preload_silences_only_the_two_library_warnings():
    # django_ratelimit.W001 and axes.W006 (see config/settings/base.py); W021 no more.
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(SECURE_HSTS_PRELOAD="1")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (2 silenced)" in result.stdout


@pytest.mark.parametrize("variable", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"])
@pytest.mark.parametrize("value", [None, ""])
def test_production_refuses_to_start_without_required_variable(variable, value):
    result = manage("check", env=production_env(**{variable: value}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"The {variable} environment variable is required" in result.stderr


def test_production_refuses_unknown_channel_layer():
    result = manage("check", env=production_env(CHANNEL_LAYER="memory"))
    assert result.returncode != 0
    assert "CHANNEL_LAYER must be one of pubsub, core" in result.stderr


def production_settings(env: dict[str, str]) -> dict:
    """Load the production settings in a subprocess and return the ones tests look at."""
    code = """if True:
        import json
        import django
        from django.conf import settings as s
        django.setup()
        print(json.dumps({
            "layer": s.CHANNEL_LAYERS["default"],
            "database": s.DATABASES["default"],
            "hsts": [
                s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD
            ],
            "allowed_hosts": s.ALLOWED_HOSTS,
            "csrf_trusted_origins": s.CSRF_TRUSTED_ORIGINS,
            "static_root": str(s.STATIC_ROOT),
            "media_root": str(s.MEDIA_ROOT),
            "proxy_ssl_header": s.SECURE_PROXY_SSL_HEADER,
            "log_level": s.LOGGING["root"]["level"],
            "cookies_secure": [s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE],
            "ssl_redirect": s.SECURE_SSL_REDIRECT,
            "debug": s.DEBUG,
            "key_fallbacks": s.SECRET_KEY_FALLBACKS,
            "server_id": s.CHAT_SERVER_ID,
            "ws_origins": s.CHAT_ALLOWED_ORIGINS,
            "ws_limits": [
                s.CHAT_WS_MAX_PER_USER, s.CHAT_WS_RATE_BURST, s.CHAT_WS_RATE_PER_SECOND,
                s.CHAT_RESYNC_INTERVAL,
            ],
            "cache": s.CACHES["default"],
            "sessions": s.SESSION_ENGINE,
            "history_seconds": s.CHAT_HISTORY_CACHE_SECONDS,
            "throttle": {
                name: getattr(s, name) for name in (
                    "CHAT_TRUSTED_PROXIES", "CHAT_IPV4_PREFIX", "CHAT_IPV6_PREFIX",
                    "CHAT_SIGNUP_RATE", "CHAT_PASSWORD_CHANGE_RATE",
                    "CHAT_LOGIN_FAILURE_LIMIT", "AXES_FAILURE_LIMIT",
                )
            },
            "cooloff_seconds": s.AXES_COOLOFF_TIME.total_seconds(),
        }))
    """
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=APP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, socket.gethostname()), ("  ", socket.gethostname()), ("app-2", "app-2")],
)
def test_server_id_defaults_to_the_host_name(value, expected):
    assert production_settings(production_env(CHAT_SERVER_ID=value))["server_id"] == expected


def test_production_settings_read_the_environment():
    loaded = production_settings(
        production_env(
            CHANNEL_LAYER="core",
            CHANNEL_CAPACITY="250",
            CONN_MAX_AGE="120",
            SECURE_HSTS_SECONDS="3600",
            ALLOWED_HOSTS="a.example,b.example",
            LOG_LEVEL="warning",
        )
    )
    assert loaded["layer"] == {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://chat:secret@127.0.0.1:6379/0"], "capacity": 250},
    }
    database = loaded["database"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.internal", 5432, "chat")
    assert (database["CONN_MAX_AGE"], database["CONN_HEALTH_CHECKS"]) == (120, True)
    assert database["OPTIONS"]["connect_timeout"] == 3
    assert loaded["hsts"] == [3600, True, False]
    assert loaded["allowed_hosts"] == ["a.example", "b.example"]
    assert loaded["csrf_trusted_origins"] == ["https://chat.example.com"]
    assert (loaded["static_root"], loaded["media_root"]) == ("/srv/chat/static", "/srv/chat/media")
    assert loaded["proxy_ssl_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert loaded["log_level"] == "WARNING"
    assert loaded["cookies_secure"] == [True, True]
    assert loaded["ssl_redirect"] is True
    assert loaded["debug"] is False


def test_production_websocket_origins_are_https_on_the_allowed_hosts_unless_set():
    derived = production_settings(production_env(ALLOWED_HOSTS="a.example,.b.example,*"))
    assert derived["ws_origins"] == ["https://a.example", "https://.b.example"]
    given = production_settings(
        production_env(CHAT_ALLOWED_ORIGINS="https://a.example:8443,https://c.example")
    )
    assert given["ws_origins"] == ["https://a.example:8443", "https://c.example"]


def test_websocket_limits_default_and_read_the_environment():
    assert production_settings(production_env())["ws_limits"] == [10, 10, 5.0, 1.0]
    loaded = production_settings(
        production_env(
            CHAT_WS_MAX_PER_USER="3",
            CHAT_WS_RATE_BURST="20",
            CHAT_WS_RATE_PER_SECOND="2.5",
            CHAT_RESYNC_INTERVAL="0.5",
        )
    )
    assert loaded["ws_limits"] == [3, 20, 2.5, 0.5]


def test_production_defaults_to_the_pubsub_layer_and_one_year_hsts():
    loaded = production_settings(production_env())
    assert loaded["layer"] == {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": ["redis://chat:secret@127.0.0.1:6379/0"]},
    }
    assert loaded["hsts"] == [31_536_000, True, False]
    assert loaded["database"]["CONN_MAX_AGE"] == 60


def test_production_caches_sessions_and_histories_and_prepares_statements():
    loaded = production_settings(production_env())
    assert loaded["sessions"] == "chat.session_store"
    assert loaded["history_seconds"] == 60
    assert loaded["cache"]["BACKEND"] == "config.cache.RedisCache"
    options = loaded["database"]["OPTIONS"]
    assert (options["server_side_binding"], options["prepare_threshold"]) == (True, 5)


def test_production_prepared_statements_follow_their_threshold_or_stay_off():
    loaded = production_settings(production_env(DATABASE_PREPARE_THRESHOLD="0"))
    assert loaded["database"]["OPTIONS"]["prepare_threshold"] == 0
    loaded = production_settings(production_env(DATABASE_PREPARE_THRESHOLD="-1"))
    assert "server_side_binding" not in loaded["database"]["OPTIONS"]


def test_production_reaches_a_database_on_its_unix_socket(postgres_server):
    """The socket form of DATABASE_URL that a deployment with the database on the app host writes.

    The folder goes in ``?host=`` (django-environ would keep a ``%2F``-encoded host as it is);
    the port only names the socket file. The connection is real: the session's server listens
    on its socket alone.
    """
    url = f"postgres://postgres@:{postgres_server.port}/postgres?host={postgres_server.socket_dir}"
    code = """if True:
        import django
        from django.db import connection
        django.setup()
        with connection.cursor() as cursor:
            cursor.execute("SELECT inet_server_addr() IS NULL, current_database()")
            print(cursor.fetchone())
    """
    result = run_in_app(["-c", code], env=production_env(DATABASE_URL=url))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(True, 'postgres')"


def test_tests_run_on_postgresql_and_a_redis_channel_layer(redis_server):
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"].startswith("channels_redis.")
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] == [redis_server.url]


def test_production_wsgi_does_not_load_twisted():
    """gunicorn workers import config.wsgi; daphne's app config would pull in twisted."""
    code = "import sys, config.wsgi; print('twisted' in sys.modules)"
    result = run_in_app(["-c", code], env=production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_development_runserver_is_daphnes():
    code = (
        "import django; django.setup(); "
        "from django.conf import settings; print(settings.INSTALLED_APPS[0])"
    )
    env = {**production_env(), "DJANGO_SETTINGS_MODULE": "config.settings.development"}
    result = run_in_app(["-c", code], env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "daphne"


def test_production_limits_default_to_the_documented_values():
    loaded = production_settings(production_env())
    assert loaded["throttle"] == {
        "CHAT_TRUSTED_PROXIES": ["127.0.0.1/32", "::1/128"],
        "CHAT_IPV4_PREFIX": 32,
        "CHAT_IPV6_PREFIX": 64,
        "CHAT_SIGNUP_RATE": "10/h",
        "CHAT_PASSWORD_CHANGE_RATE": "10/h",
        "CHAT_LOGIN_FAILURE_LIMIT": 5,
        "AXES_FAILURE_LIMIT": 5,
    }
    assert loaded["cooloff_seconds"] == 900
    # The counters are shared by every process and host: Redis, the channel layer's.
    assert loaded["cache"]["BACKEND"] == "config.cache.RedisCache"
    assert loaded["cache"]["LOCATION"] == "redis://chat:secret@127.0.0.1:6379/0"
    assert loaded["cache"]["KEY_PREFIX"] == "cache"


def test_production_limits_read_the_environment():
    loaded = production_settings(
        production_env(
            CHAT_TRUSTED_PROXIES="10.0.0.5/32,fd00::/64",
            CHAT_IPV6_PREFIX="56",
            CHAT_SIGNUP_RATE="3/15m",
            CHAT_PASSWORD_CHANGE_RATE="20/d",
            CHAT_LOGIN_FAILURE_LIMIT="8",
            CHAT_LOGIN_COOLOFF_SECONDS="60",
        )
    )
    assert loaded["throttle"]["CHAT_TRUSTED_PROXIES"] == ["10.0.0.5/32", "fd00::/64"]
    assert loaded["throttle"]["CHAT_IPV6_PREFIX"] == 56
    assert loaded["throttle"]["CHAT_SIGNUP_RATE"] == "3/15m"
    assert loaded["throttle"]["CHAT_PASSWORD_CHANGE_RATE"] == "20/d"
    assert loaded["throttle"]["AXES_FAILURE_LIMIT"] == 8
    assert loaded["cooloff_seconds"] == 60


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CHAT_SIGNUP_RATE", "ten per hour", "CHAT_SIGNUP_RATE must be a rate such as 10/h"),
        ("CHAT_PASSWORD_CHANGE_RATE", "0/h", "CHAT_PASSWORD_CHANGE_RATE must be a rate"),
        ("CHAT_LOGIN_FAILURE_LIMIT", "0", "CHAT_LOGIN_FAILURE_LIMIT must be an integer from 1"),
        ("CHAT_LOGIN_COOLOFF_SECONDS", "soon", "CHAT_LOGIN_COOLOFF_SECONDS must be an integer"),
        ("CHAT_IPV6_PREFIX", "129", "CHAT_IPV6_PREFIX must be an integer from 32 to 128"),
        ("CHAT_TRUSTED_PROXIES", "10.0.0.0/8,nginx", "CHAT_TRUSTED_PROXIES: 'nginx' is not"),
    ],
)
def test_production_refuses_bad_limits(variable, value, message):
    result = manage("check", env=production_env(**{variable: value}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, []), ("", []), ("old-key-1,old-key-2", ["old-key-1", "old-key-2"])],
)
def test_production_reads_the_previous_secret_keys(value, expected):
    loaded = production_settings(production_env(SECRET_KEY_FALLBACKS=value))
    assert loaded["key_fallbacks"] == expected


def test_database_url_assume_role_logs_in_as_a_member_and_acts_as_the_owner(postgres_server):
    """The DATABASE_URL a deployment with rotating login roles writes (connections.yml).

    The login role (a member of the NOLOGIN owner) connects, Django's ``assume_role``
    (from the URL's query into OPTIONS) makes every statement run as the owner, and
    a table it creates belongs to the owner.
    """
    import psycopg

    admin = psycopg.connect(
        host=postgres_server.socket_dir,
        port=postgres_server.port,
        user=postgres_server.superuser,
        dbname="postgres",
        autocommit=True,
    )
    try:
        admin.execute("DROP DATABASE IF EXISTS rot_check")
        admin.execute("DROP ROLE IF EXISTS rot_owner_a1b2c3d4")
        admin.execute("DROP ROLE IF EXISTS rot_owner")
        admin.execute("CREATE ROLE rot_owner NOLOGIN")
        admin.execute("CREATE ROLE rot_owner_a1b2c3d4 LOGIN IN ROLE rot_owner")
        admin.execute("CREATE DATABASE rot_check OWNER rot_owner")
        url = (
            f"postgres://rot_owner_a1b2c3d4@:{postgres_server.port}/rot_check"
            f"?host={postgres_server.socket_dir}&assume_role=rot_owner"
        )
        code = """if True:
            import django
            from django.db import connection
            django.setup()
            with connection.cursor() as cursor:
                cursor.execute("CREATE TABLE made_here (id int)")
                cursor.execute(
                    "SELECT session_user, current_user, tableowner FROM pg_tables"
                    " WHERE tablename = 'made_here'"
                )
                print(cursor.fetchone())
        """
        result = run_in_app(["-c", code], env=production_env(DATABASE_URL=url))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "('rot_owner_a1b2c3d4', 'rot_owner', 'rot_owner')"
    finally:
        admin.execute("DROP DATABASE IF EXISTS rot_check")
        admin.execute("DROP ROLE IF EXISTS rot_owner_a1b2c3d4")
        admin.execute("DROP ROLE IF EXISTS rot_owner")
        admin.close()
