"""``GET /healthz``: is this app server able to reach PostgreSQL and Redis?

Answers 200 ``{"database": "ok", "redis": "ok"}`` when both answer and 503 with
``"error: <exception class>"`` in place of ``"ok"`` for each that does not; the
full error goes to the log. Needs no login, is never cached, and is exempt from
the HTTPS redirect (SECURE_REDIRECT_EXEMPT) because local health checks call it
in plain HTTP over the app server's socket. Its Host header must still be one of
ALLOWED_HOSTS.
"""

import logging

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

# Seconds to wait for Redis to accept the connection and to answer PING.
REDIS_TIMEOUT = 1.0


def check_database() -> str:
    """Run ``SELECT 1`` on the default database.

    Connecting waits at most the connect timeout of the database settings (3 s by default).

    Returns:
        ``"ok"``, or ``"error: <exception class>"`` when the query failed.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("Health check: database unreachable: %s", exc)
        return f"error: {type(exc).__name__}"
    return "ok"


def check_redis() -> str:
    """Send ``PING`` to the channel layer's Redis, once, within REDIS_TIMEOUT seconds.

    PING is allowed to the restricted ACL user the deployment gives the app.

    Returns:
        ``"ok"``; ``"not configured"`` when no REDIS_URL is set (development with the
        in-memory layer); or ``"error: <exception class>"`` when Redis did not answer.
    """
    if not settings.REDIS_URL:
        return "not configured"
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        logger.warning("Health check: Redis unreachable: %s", exc)
        return f"error: {type(exc).__name__}"
    finally:
        client.close()
    return "ok"


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Report the database and Redis state: 200 when both are usable, else 503."""
    results = {"database": check_database(), "redis": check_redis()}
    healthy = all(not value.startswith("error") for value in results.values())
    return JsonResponse(results, status=200 if healthy else 503)
