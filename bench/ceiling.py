"""The app's own cost per page, run inside the deployed app's environment by ``manage.py shell -c``.

It calls the release's WSGI application (``config.wsgi.application``, the object gunicorn
serves) directly, one request after the other, with no HTTP server, no nginx and no TLS in
the way. Each request is the one wrk sends: the same path, the site's host name, the
``X-Forwarded-Proto: https`` nginx adds and a bench user's session cookie. The response body
is read and closed, as gunicorn does, so Django's request signals run (and with them the
persistent connection's health check before the next request's first query).

It measures, per request:

* ``django_cpu_ms``: CPU time (user + system) of this Python process, in milliseconds
  (``time.process_time``);
* ``postgresql_cpu_ms``: CPU time of the PostgreSQL backend that serves this process's
  connection (``pg_backend_pid()``; fields 14 and 15 of ``/proc/<pid>/stat``, in clock ticks),
  in milliseconds;
* ``wall_ms``: elapsed time, in milliseconds.

Their sum is the least CPU one request of that page costs on this machine, whatever server
runs it; ``cores / (django_cpu_ms + postgresql_cpu_ms)`` is the most requests per second the
machine's cores could serve even if the server, nginx, TLS and the load generator cost nothing.

Reads from the environment: ``BENCH_PATHS`` (JSON list of paths), ``BENCH_HOST`` (the site's
name, an ``ALLOWED_HOSTS`` entry), ``BENCH_COOKIE`` (a session key), ``BENCH_REQUESTS``
(measured requests per path; as many again run first to warm caches). The last line of output
is JSON: ``{"<path>": {"django_cpu_ms": ..., "postgresql_cpu_ms": ..., "wall_ms": ...,
"requests": n, "status": 200}, ...}``.

Raises (as an uncaught error, so the bench reports the step as failed): ``RuntimeError`` when a
page does not answer 200, or when the database connection was replaced while measuring (its
backend's CPU time would be lost).
"""

import io
import json
import os
import time
import wsgiref.util

from config.wsgi import application
from django.conf import settings
from django.db import connection

paths = json.loads(os.environ["BENCH_PATHS"])
host = os.environ["BENCH_HOST"]
cookie = os.environ["BENCH_COOKIE"]
count = int(os.environ["BENCH_REQUESTS"])
tick_ms = 1000 / os.sysconf("SC_CLK_TCK")


def request(path: str) -> str:
    """Run one GET through the WSGI application; return its status line."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "HTTP_HOST": host,
        "HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}={cookie}",
        "HTTP_X_FORWARDED_PROTO": "https",
        "wsgi.input": io.BytesIO(b""),
    }
    wsgiref.util.setup_testing_defaults(environ)
    status = []
    body = application(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        for _ in body:
            pass
    finally:
        body.close()
    return status[0]


def backend_cpu_ms() -> tuple[int, float]:
    """This process's PostgreSQL backend: its PID and the CPU time it used so far (ms)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces; the fields after it do not.
        fields = stat.read().rsplit(")", 1)[1].split()
    return pid, (int(fields[11]) + int(fields[12])) * tick_ms


def request_ok(path: str) -> None:
    """Run one GET; raise RuntimeError unless it answered 200 (a redirect to the login page
    would be a cheaper page than the one measured)."""
    status = request(path)
    if not status.startswith("200"):
        raise RuntimeError(f"GET {path} answered {status!r}, not 200")


results = {}
for path in paths:
    for _ in range(count):
        request_ok(path)
    pid_before, pg_before = backend_cpu_ms()
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    for _ in range(count):
        request_ok(path)
    cpu_after, wall_after = time.process_time(), time.perf_counter()
    pid_after, pg_after = backend_cpu_ms()
    if pid_after != pid_before:
        raise RuntimeError("the database connection was replaced during the measurement")
    results[path] = {
        "django_cpu_ms": round((cpu_after - cpu_before) * 1000 / count, 2),
        "postgresql_cpu_ms": round((pg_after - pg_before) / count, 2),
        "wall_ms": round((wall_after - wall_before) * 1000 / count, 2),
        "requests": count,
        "status": 200,
    }
print(json.dumps(results))
