"""The app's Prometheus metrics, shared by every server process of a host.

prometheus-client's multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` is set
(the app server units set it, one folder per unit that systemd empties at every
start), each process writes its values to memory-mapped files there, and one
exporter process per host (``python -m chat.metrics_server``) merges the files
of every folder on a private port. Without the variable (tests, ``manage.py``)
the values live in this process's default registry.

Every metric carries the label ``app_server``: the name of the unit's folder
(``chat-gunicorn``, ``chat-daphne-1``, ...), so each daphne instance has its own
WebSocket gauges. No label ever names a room or a user: their number has no
bound. HTTP views are labelled by their URL name (``chat:room``), which the
URL configuration bounds.
"""

import os
import time
from collections import Counter as Tally
from collections.abc import Callable
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Gauge, Histogram

# View label of a request that matched no URL pattern (404s of unknown paths).
UNMATCHED_VIEW = "<unmatched>"


def app_server_name() -> str:
    """Return the ``app_server`` label of this process.

    The last component of ``PROMETHEUS_MULTIPROC_DIR`` (the unit's own folder),
    or ``local`` when the variable is unset.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    return Path(folder).name if folder else "local"


APP_SERVER = app_server_name()

WEBSOCKETS = Gauge(
    "chat_websocket_connections",
    "WebSocket connections in a room, per app server instance.",
    ["app_server"],
    multiprocess_mode="livesum",
)
ROOMS = Gauge(
    "chat_rooms_with_members",
    "Rooms with at least one connection, per app server instance.",
    ["app_server"],
    multiprocess_mode="livesum",
)
MESSAGES_STORED = Counter(
    "chat_messages_stored", "Chat messages stored in the database.", ["app_server"]
)
MESSAGES_BROADCAST = Counter(
    "chat_messages_broadcast",
    "Chat messages published to their room's group on the channel layer.",
    ["app_server"],
)
BROADCAST_FAILURES = Counter(
    "chat_broadcast_failures",
    "Stored chat messages the channel layer refused to broadcast (after the retry).",
    ["app_server"],
)
HTTP_DURATION = Histogram(
    "chat_http_request_duration_seconds",
    "Time Django took to answer an HTTP request, by view.",
    ["app_server", "view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_RESPONSES = Counter(
    "chat_http_responses",
    "HTTP responses Django sent, by view and status class (2xx, 3xx, 4xx, 5xx).",
    ["app_server", "view", "code_class"],
)

# Every series of this process exists from the start, at 0: increase() and
# rate() see the first failure as a change, and each instance shows its gauges.
for _metric in (WEBSOCKETS, ROOMS, MESSAGES_STORED, MESSAGES_BROADCAST, BROADCAST_FAILURES):
    _metric.labels(APP_SERVER)

# Methods other than these are counted as "other": clients choose the method.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Status classes each view's response counter starts with, at 0.
_CODE_CLASSES = ("2xx", "3xx", "4xx", "5xx")
# Views whose response series this process has created (see RequestMetricsMiddleware).
_views_counted: set[str] = set()

# Connections of this process per room; only the number of keys is exported.
_room_members: Tally[str] = Tally()


def websocket_joined(room: str) -> None:
    """Count one more connection in ``room`` (after the consumer accepted it)."""
    WEBSOCKETS.labels(APP_SERVER).inc()
    _room_members[room] += 1
    ROOMS.labels(APP_SERVER).set(len(_room_members))


def websocket_left(room: str) -> None:
    """Count one connection of ``room`` less (it had been counted by ``websocket_joined``)."""
    WEBSOCKETS.labels(APP_SERVER).dec()
    _room_members[room] -= 1
    if _room_members[room] <= 0:
        del _room_members[room]
    ROOMS.labels(APP_SERVER).set(len(_room_members))


def message_stored() -> None:
    """Count a message written to the database."""
    MESSAGES_STORED.labels(APP_SERVER).inc()


def message_broadcast() -> None:
    """Count a message the channel layer accepted for its room."""
    MESSAGES_BROADCAST.labels(APP_SERVER).inc()


def broadcast_failed() -> None:
    """Count a stored message the channel layer could not broadcast."""
    BROADCAST_FAILURES.labels(APP_SERVER).inc()


def view_name(request: HttpRequest) -> str:
    """Return the URL name of the view that answered ``request`` (``UNMATCHED_VIEW`` if none)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED_VIEW
    return match.view_name or match._func_path


class RequestMetricsMiddleware:
    """Time every HTTP request and count its response by view and status class.

    Put first in ``MIDDLEWARE`` so that the time covers the other middleware. A view's first
    response in this process creates its series of every status class at 0: a burst of 5xx
    that starts and ends between two scrapes is then an increase from 0 (a series that first
    appears at 8 is no increase to ``rate()``, and ``HttpErrorRatio`` would never fire).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Answer ``request`` and record its duration (seconds) and status class."""
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        view = view_name(request)
        method = request.method if request.method in _METHODS else "other"
        HTTP_DURATION.labels(APP_SERVER, view, method).observe(elapsed)
        if view not in _views_counted:
            for code_class in _CODE_CLASSES:
                HTTP_RESPONSES.labels(APP_SERVER, view, code_class)
            _views_counted.add(view)
        HTTP_RESPONSES.labels(APP_SERVER, view, f"{response.status_code // 100}xx").inc()
        return response
