"""What each step of issue 18 saves on the room page, measured side by side in one run.

Runs on this machine, in the app's virtualenv, against the same throwaway PostgreSQL and
Redis servers the app's tests start (app/tests/servers.py), with the production settings
(``config.settings.production``: persistent connections with health checks, the Redis
cache, the manifest static storage)::

    cd app && ../.venv-app/bin/python ../bench/page_steps.py [--rounds 5] [--requests 300]

It calls the WSGI application directly, as bench/ceiling.py does in the deployed app (the
room page with 50 messages of history, a logged-in session, ``X-Forwarded-Proto: https``),
and records per request the CPU time of this Python process, of its PostgreSQL backend and
of the Redis server (``/proc/<pid>/stat``), in milliseconds. The steps are cumulative, each
one adds a change to the one before; the rounds alternate between them (round 1: every
step, round 2: every step, ...), so that a change in the machine's load hits all of them
alike. Each round reconnects to PostgreSQL and warms up with as many requests as it
measures. The figures reported are the medians over the rounds.

Steps:

* ``before``: no history cache, sessions in the database, client-side parameter binding;
* ``history cache``: ``CHAT_HISTORY_CACHE_SECONDS=60`` (chat/history.py);
* ``cached sessions``: ``SESSION_ENGINE`` ``chat.session_store`` (cached_db);
* ``one redis client``: the cache backend ``config.cache.RedisCache`` (before it, Django's
  own, which builds a redis-py client per operation);
* ``prepared statements``: psycopg's server-side binding and prepared statements
  (``DATABASE_PREPARE_THRESHOLD=5``);
* ``(no health checks)``: ``CONN_HEALTH_CHECKS`` off, not adopted (measured to show what
  the check's ``SELECT 1`` per request costs).

The last line of output is JSON: ``{"<step>": {"django_cpu_ms": ..., "postgresql_cpu_ms":
..., "redis_cpu_ms": ..., "total_cpu_ms": ..., "wall_ms": ..., "queries": n}, ...}``.
Nothing is written to disk but the servers' temporary folders, which are removed.

Raises (uncaught): ``RuntimeError`` when the page does not answer 200 or a step's database
connection was replaced while measuring.
"""

import argparse
import contextlib
import copy
import io
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import wsgiref.util
from collections.abc import Iterator
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
sys.path.insert(0, str(APP))

from tests.servers import PostgresServer, RedisServer  # noqa: E402

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
ROOM = "bench-room"
HOST = "chat.example"


def proc_cpu_ms(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in milliseconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_MS


@contextlib.contextmanager
def app_environment() -> Iterator[tuple[PostgresServer, RedisServer, dict[str, str]]]:
    """Start the servers, point the production settings at them, set up the app.

    The database is migrated, the static files collected into a temporary folder, and the
    room ``ROOM`` gets a full history from the user ``bench-0000``.

    Yields:
        The servers and the environment variables the settings read (for a gunicorn of
        the same app).
    """
    postgres = PostgresServer()
    postgres.start()
    redis = RedisServer("pubsub")
    static_root = tempfile.mkdtemp(prefix="chat-bench-static-")
    try:
        redis.start()
        socket_dir = urllib.parse.quote(postgres.socket_dir)
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "DATABASE_URL": (
                f"postgres://{postgres.superuser}@:{postgres.port}/postgres?host={socket_dir}"
            ),
            "REDIS_URL": redis.url,
            "ALLOWED_HOSTS": HOST,
            "STATIC_ROOT": static_root,
            "LOG_LEVEL": "WARNING",
        }
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        from chat.models import Message
        from chat.views import HISTORY_LENGTH
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_user("bench-0000")
        for n in range(HISTORY_LENGTH):
            Message.post(ROOM, user, f"history message {n} for the room page benchmark")
        yield postgres, redis, env
    finally:
        redis.cleanup()
        postgres.stop()
        shutil.rmtree(static_root, ignore_errors=True)


def session_cookie() -> str:
    """Log ``bench-0000`` in with the settings in force; return the session key."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-0000"))
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def main() -> None:
    """Measure the steps; print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", metavar="STEP", help="cProfile STEP instead (top 25 own)")
    args = parser.parse_args()
    with app_environment() as (_, redis, _):
        measure(redis, args.rounds, args.requests, args.profile)


def measure(redis: RedisServer, rounds: int, count: int, profile: str | None = None) -> None:
    """Run the rounds of every step; print the JSON (or, with ``profile``, the profile of
    that step's requests)."""
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test import override_settings
    from django.test.utils import CaptureQueriesContext

    django_cache = copy.deepcopy(settings.CACHES)
    django_cache["default"]["BACKEND"] = "django.core.cache.backends.redis.RedisCache"
    step: dict[str, object] = {
        "CHAT_HISTORY_CACHE_SECONDS": 0,
        "SESSION_ENGINE": "django.contrib.sessions.backends.db",
        "CACHES": django_cache,
    }
    steps = {"before": (dict(step), {})}
    step["CHAT_HISTORY_CACHE_SECONDS"] = 60
    steps["history cache"] = (dict(step), {})
    step["SESSION_ENGINE"] = "chat.session_store"
    steps["cached sessions"] = (dict(step), {})
    step["CACHES"] = copy.deepcopy(settings.CACHES)
    steps["one redis client"] = (dict(step), {})
    prepared = {"server_side_binding": True, "prepare_threshold": 5}
    steps["prepared statements"] = (dict(step), prepared)
    # Not adopted, measured to show what it costs: without the check a request after a
    # PostgreSQL restart would fail on its worker's dead connection.
    steps["(no health checks)"] = (dict(step), {**prepared, "health_checks": False})
    # Client-side binding (Django's default) unless a step asks for prepared statements.
    base_options = {
        key: value
        for key, value in connection.settings_dict["OPTIONS"].items()
        if key not in ("server_side_binding", "prepare_threshold")
    }
    handlers, cookies = {}, {}
    for name, (overrides, _) in steps.items():
        with override_settings(**overrides):
            handlers[name] = WSGIHandler()
            cookies[name] = session_cookie()

    def request(handler: WSGIHandler, cookie: str) -> None:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": f"/chat/{ROOM}/",
            "HTTP_HOST": HOST,
            "HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}={cookie}",
            "HTTP_X_FORWARDED_PROTO": "https",
            "wsgi.input": io.BytesIO(b""),
        }
        wsgiref.util.setup_testing_defaults(environ)
        status = []
        body = handler(environ, lambda line, headers, exc_info=None: status.append(line))
        try:
            for _ in body:
                pass
        finally:
            body.close()
        if not status[0].startswith("200"):
            raise RuntimeError(f"the room page answered {status[0]!r}, not 200")

    def backend() -> tuple[int, float]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        return pid, proc_cpu_ms(pid)

    if profile is not None:
        import cProfile
        import pstats

        overrides, options = steps[profile]
        with override_settings(**overrides):
            connection.close()
            connection.settings_dict["OPTIONS"] = {**base_options, **options}
            for _ in range(count):
                request(handlers[profile], cookies[profile])
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(count):
                request(handlers[profile], cookies[profile])
            profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, (overrides, options) in steps.items():
            with override_settings(**overrides):
                connection.close()
                checks = options.get("health_checks", True)
                connection.settings_dict["CONN_HEALTH_CHECKS"] = checks
                connection.settings_dict["OPTIONS"] = {
                    **base_options,
                    **{k: v for k, v in options.items() if k != "health_checks"},
                }
                handler, cookie = handlers[name], cookies[name]
                for _ in range(count):
                    request(handler, cookie)
                with CaptureQueriesContext(connection) as captured:
                    request(handler, cookie)
                queries = len(captured.captured_queries)
                pid_before, pg_before = backend()
                redis_before = proc_cpu_ms(redis.process.pid)
                cpu_before, wall_before = time.process_time(), time.perf_counter()
                for _ in range(count):
                    request(handler, cookie)
                cpu_after, wall_after = time.process_time(), time.perf_counter()
                redis_after = proc_cpu_ms(redis.process.pid)
                pid_after, pg_after = backend()
                if pid_after != pid_before:
                    raise RuntimeError(f"{name}: the database connection was replaced")
                samples[name].append(
                    {
                        "django_cpu_ms": (cpu_after - cpu_before) * 1000 / count,
                        "postgresql_cpu_ms": (pg_after - pg_before) / count,
                        "redis_cpu_ms": (redis_after - redis_before) / count,
                        "wall_ms": (wall_after - wall_before) * 1000 / count,
                        "queries": queries,
                    }
                )
    connection.settings_dict["OPTIONS"] = base_options
    connection.settings_dict["CONN_HEALTH_CHECKS"] = True
    results = {}
    for name, rows in samples.items():
        figures = {key: round(statistics.median(r[key] for r in rows), 3) for key in rows[0]}
        figures["total_cpu_ms"] = round(
            figures["django_cpu_ms"] + figures["postgresql_cpu_ms"] + figures["redis_cpu_ms"], 3
        )
        results[name] = figures
    print(json.dumps(results))


if __name__ == "__main__":
    main()
