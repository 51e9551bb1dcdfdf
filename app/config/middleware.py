"""Project-wide middleware."""

import contextlib
import ipaddress
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from redis.exceptions import RedisError

from chat.sessions import renew_session_hash

logger = logging.getLogger(__name__)

# Seconds a client is asked to wait (Retry-After) when PostgreSQL or Redis is unreachable:
# about the time a restart of either takes.
UNAVAILABLE_RETRY_AFTER = 5

# The site's own pages load only their own scripts and styles (no CDN, no inline
# script), so a strict policy costs nothing and blunts any injection that slips
# past escaping. The admin keeps Django's defaults: it uses inline attributes.
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' {websocket_origins}; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    """Add a ``Content-Security-Policy`` header to HTML pages outside /admin/.

    ``connect-src`` names the page's own host with ``ws:``/``wss:`` explicitly, as
    older browsers do not count WebSockets under ``'self'``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith("/admin/")
            or "Content-Security-Policy" in response
            or not response.get("Content-Type", "").startswith("text/html")
        ):
            return response
        host = request.get_host()
        scheme = "wss" if request.is_secure() else "ws"
        response["Content-Security-Policy"] = _POLICY.format(websocket_origins=f"{scheme}://{host}")
        return response


class ClientAddressMiddleware:
    """Put the client's address, as nginx saw it, into ``REMOTE_ADDR``.

    nginx sets ``X-Real-IP: $remote_addr``, overwriting whatever the client sent.
    The header is believed only from nginx: a peer on the app server's unix socket
    (no address) or one in ``CHAT_TRUSTED_PROXIES`` (CIDRs: the web hosts when the
    app server listens on TCP). From any other peer, or when the header is not one
    valid address, ``REMOTE_ADDR`` stays the peer's own address. The per-address
    limits and django-axes read ``REMOTE_ADDR`` only (``accounts.throttle``), never
    ``X-Forwarded-For``, which a client can prefill.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.trusted = [
            ipaddress.ip_network(cidr, strict=False) for cidr in settings.CHAT_TRUSTED_PROXIES
        ]

    def _peer_is_trusted(self, peer: str) -> bool:
        if not peer:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.META.get("HTTP_X_REAL_IP", "").strip()
        if header and self._peer_is_trusted(request.META.get("REMOTE_ADDR", "")):
            with contextlib.suppress(ValueError):
                request.META["REMOTE_ADDR"] = str(ipaddress.ip_address(header))
        return self.get_response(request)


class SessionHashRenewalMiddleware:
    """Keep a session logged in, under its key, across a ``SECRET_KEY`` rotation.

    Between Django's session and authentication middleware: a session whose auth
    hash a ``SECRET_KEY_FALLBACKS`` key made gets the current key's hash for this
    request (``chat.sessions.renew_session_hash``), so that Django's ``get_user``
    does not give it a new session key, which would close the user's WebSockets
    with 4401. The renewal is not saved: while the servers restart one after the
    other, one that still runs the old key alone could not read a session signed
    with the new key. ``manage.py resign_sessions`` saves it once all run the new
    key. Without fallback keys it does nothing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.SECRET_KEY_FALLBACKS:
            session = request.session
            modified = session.modified
            renew_session_hash(session)
            session.modified = modified
        return self.get_response(request)


class ServiceUnavailableMiddleware:
    """Answer 503 with ``Retry-After`` when a view fails because a backend is unreachable.

    PostgreSQL or Redis going away is an outage of the service, not a bug in the request:
    the client is told to come back (``Retry-After``, ``UNAVAILABLE_RETRY_AFTER``
    seconds) instead of getting Django's 500, and the error is
    logged once without a traceback page. The exceptions taken for an outage are
    ``django.db.OperationalError`` and ``InterfaceError`` (a connection refused, lost or
    closed) and ``redis.exceptions.RedisError``; any other exception stays a 500. The
    response still counts as a 5xx in the app's metrics, so ``HttpErrorRatio`` sees it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Return the 503 for an outage's exception, else ``None`` (Django's own handling)."""
        if not isinstance(exception, OperationalError | InterfaceError | RedisError):
            return None
        logger.error(
            "%s %s: a backend is unavailable (%s: %s)",
            request.method,
            request.path,
            type(exception).__name__,
            exception,
        )
        response = HttpResponse(
            "The service is briefly unavailable. Please try again in a moment.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        response["Cache-Control"] = "no-store"
        return response
