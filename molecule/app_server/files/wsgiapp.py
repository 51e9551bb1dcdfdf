"""Tiny WSGI app for the app_server scenario (gunicorn).

Every request answers 200 with JSON describing what the service's sandbox
lets the app see and do; `?sleep=SECONDS` delays the answer, so that a
restart finds requests in flight.
"""

import json
import time

from sandbox_probe import sandbox_report


def application(environ, start_response):
    """WSGI entry point."""
    query = environ.get("QUERY_STRING", "")
    if query.startswith("sleep="):
        time.sleep(float(query.removeprefix("sleep=")))
    body = sandbox_report()
    data = json.dumps(body).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
