"""Limits on the requests that make the server hash a password.

Two kinds, both answered with ``429 Too Many Requests`` and a ``Retry-After``
header (whole seconds, at least 1):

- **Per account** (django-axes): after ``CHAT_LOGIN_FAILURE_LIMIT`` failed
  logins or wrong current passwords for one username within
  ``CHAT_LOGIN_COOLOFF_SECONDS``, from any number of addresses, every login of
  that username (site and admin) and its password change are refused, without
  hashing, until the failures age out of the cool-off.
- **Per client address** (django-ratelimit, counters in Redis through Django's
  cache): POSTs to sign-up and password change, counted per IPv4 address
  (``CHAT_IPV4_PREFIX``, default /32) and per IPv6 network
  (``CHAT_IPV6_PREFIX``, default /64: one client usually holds a whole /64).

The client address is ``REMOTE_ADDR`` as ``config.middleware.ClientAddressMiddleware``
leaves it (nginx's ``X-Real-IP`` when the request came through nginx).
"""

import ipaddress
import logging
import math
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# The key of requests whose client address is unknown or not an address (a
# local check over the socket without X-Real-IP): they share one budget.
UNKNOWN_ADDRESS = "unknown"

View = Callable[..., HttpResponse]


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, or None when there is none (``AXES_CLIENT_IP_CALLABLE``).

    Only ``REMOTE_ADDR``, never a header a client could write (see
    ``config.middleware.ClientAddressMiddleware``).
    """
    return request.META.get("REMOTE_ADDR") or None


def address_key(group: str, request: HttpRequest) -> str:
    """The per-address budget a request counts against (a django-ratelimit key function).

    Args:
        group: the limit's name (unused: django-ratelimit passes it).
        request: the request; its ``REMOTE_ADDR`` is the client's address.

    Returns:
        The network in CIDR notation: the IPv4 address masked to ``CHAT_IPV4_PREFIX``
        bits, or the IPv6 address masked to ``CHAT_IPV6_PREFIX`` bits (an IPv4-mapped
        IPv6 address counts as its IPv4 address); ``UNKNOWN_ADDRESS`` without a valid
        address.
    """
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = settings.CHAT_IPV4_PREFIX if address.version == 4 else settings.CHAT_IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def too_many_requests(request: HttpRequest, retry_after: float, reason: str) -> HttpResponse:
    """A ``429`` page saying why and when to come back.

    Args:
        request: the refused request.
        retry_after: seconds until a new attempt can succeed; rounded up, at least 1.
        reason: one sentence for the page, e.g. "Too many sign-ups from your network."
    """
    seconds = max(1, math.ceil(retry_after))
    response = render(
        request,
        "accounts/throttled.html",
        {"reason": reason, "retry_after": seconds, "minutes": math.ceil(seconds / 60)},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


def _address_refusal(
    request: HttpRequest, group: str, rate: str, reason: str
) -> HttpResponse | None:
    """Count the request against its address's budget; a 429 when it is spent, else None.

    Redis unreachable (or refusing the commands): logged, and the request is
    let through, so that an outage of the channel layer does not close sign-up;
    nginx's per-address limit still holds then.
    """
    try:
        usage = get_usage(request, group=group, key=address_key, rate=rate, increment=True)
    except RedisError as error:
        logger.error("Per-address limit %s not checked: Redis failed (%r)", group, error)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    logger.warning("Per-address limit %s reached by %s", group, address_key(group, request))
    return too_many_requests(request, usage["time_left"], reason)


def limit_per_address(group: str, rate_setting: str, reason: str) -> Callable[[View], View]:
    """Decorate a view: its POSTs count against a budget per client address (``address_key``).

    Args:
        group: the budget's name, e.g. ``"signup"``; views with the same name share it.
        rate_setting: name of the setting with the rate, e.g. ``"CHAT_SIGNUP_RATE"``
            (``"10/h"``: 10 requests per hour; units s, m, h, d); read at each request.
        reason: sentence shown on the 429 page.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST":
                refusal = _address_refusal(request, group, getattr(settings, rate_setting), reason)
                if refusal is not None:
                    return refusal
            return view(request, *args, **kwargs)

        return limited

    return decorate


def lockout_seconds_left(username: str | None) -> float:
    """Seconds until the account ``username`` is no longer locked out.

    Axes counts the failures of attempts newer than the cool-off; the lock ends
    when the newest attempts, together, hold fewer failures than the limit. So
    it ends one cool-off after the attempt at which the newest-first running
    total reaches the limit. At least 1 (the account may be unlocked already).
    """
    cooloff = timedelta(seconds=settings.CHAT_LOGIN_COOLOFF_SECONDS)
    now = timezone.now()
    attempts = (
        AccessAttempt.objects.filter(username=username, attempt_time__gte=now - cooloff)
        .order_by("-attempt_time")
        .values_list("attempt_time", "failures_since_start")
    )
    total = 0
    for attempt_time, failures in attempts:
        total += failures
        if total >= settings.AXES_FAILURE_LIMIT:
            return max(1.0, (attempt_time + cooloff - now).total_seconds())
    return 1.0


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | dict | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """The answer to a request for a locked-out account (``AXES_LOCKOUT_CALLABLE``).

    Args:
        request: the refused request.
        original_response: the view's response, replaced (axes' async middleware
            passes the credentials here instead).
        credentials: the credentials axes saw, with ``username``; when missing, the
            request's own (``request.axes_credentials``, the login form, the user).
    """
    if credentials is None and isinstance(original_response, dict):
        credentials = original_response
    credentials = credentials or getattr(request, "axes_credentials", None) or {}
    username = credentials.get("username") or request.POST.get("username")
    if not username and getattr(request, "user", None) and request.user.is_authenticated:
        username = request.user.get_username()
    return too_many_requests(
        request,
        lockout_seconds_left(username),
        "Too many failed attempts for this account.",
    )


def guard_password_change(view: View) -> View:
    """Decorate a password-change view (the site's or the admin's) with both limits.

    A POST first counts against its address's ``CHAT_PASSWORD_CHANGE_RATE`` budget,
    then is refused while the user's account is locked out; a wrong current password
    counts as a failed login of that account, so guessing it through this form is
    limited like guessing it at the login form.
    """

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST" or not request.user.is_authenticated:
            return view(request, *args, **kwargs)
        refusal = _address_refusal(
            request,
            "password_change",
            settings.CHAT_PASSWORD_CHANGE_RATE,
            "Too many password changes from your network.",
        )
        if refusal is not None:
            return refusal
        credentials = {"username": request.user.get_username()}
        if not AxesProxyHandler.is_allowed(request, credentials):
            return lockout_response(request, None, credentials)
        response = view(request, *args, **kwargs)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if form is not None and "old_password" in form.errors:
            # Axes records it, and locks the account when this was one too many
            # (AxesMiddleware then answers with lockout_response).
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        return response

    return guarded
