"""Tiny WSGI app for the app_server scenario (gunicorn).

Every request answers 200 with JSON describing what the service's sandbox
lets the app see and do; `?sleep=SECONDS` delays the answer, so that a
restart finds requests in flight.
"""

import json
import os
import tempfile
import time

import psycopg


def _try_write(folder: str) -> str:
    """Create and remove a file in `folder`; return "ok" or the error's class name."""
    try:
        fd, name = tempfile.mkstemp(dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return type(exc).__name__
    return "ok"


def application(environ, start_response):
    """WSGI entry point."""
    query = environ.get("QUERY_STRING", "")
    if query.startswith("sleep="):
        time.sleep(float(query.removeprefix("sleep=")))
    body = {
        "greeting": os.environ.get("TESTAPP_GREETING"),
        "settings": os.environ.get("TESTAPP_SETTINGS"),
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "libpq": psycopg.pq.version(),
        "write_media": _try_write(os.environ["TESTAPP_MEDIA"]),
        "write_app": _try_write(os.getcwd()),
        "write_tmp": _try_write(tempfile.gettempdir()),
    }
    data = json.dumps(body).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
