"""Closing a user's WebSockets when the session behind them ends.

A WebSocket is authenticated once, at the handshake. So that it does not
outlive its session, every chat connection joins the group of its user,
``chat.user.<id>``, and these signals send a ``chat.user_check`` event there:

- ``user_logged_out``: the event names the session (a hash of its key); the
  connections of that session close at once with 4401;
- a saved user (password changed, ``is_active`` turned off, any other change
  but a login's ``last_login``) and a deleted user: every connection of the
  user reads its session again and checks it as Django would on the next request
  (session still there, same user, user active, password hash unchanged); it
  closes with 4401 when that fails. A password change view gives the changer's
  browser a new session key (``update_session_auth_hash``), so the changer's own
  connections close too, and their clients reconnect with the new cookie.

Besides, every ``chat.message`` checks the session before the message is stored.

A ``SECRET_KEY`` rotation must not end any session: ``renew_session_hash``
gives a session whose auth hash an old key (``SECRET_KEY_FALLBACKS``) made the
current key's hash under the same session key, for each request
(``config.middleware.SessionHashRenewalMiddleware``) and WebSocket handshake
(``config.asgi``) without saving it, and ``manage.py resign_sessions`` saves
it for every session once every server runs the new key.
"""

import hashlib
import logging
from collections.abc import MutableMapping
from importlib import import_module
from typing import Any

from asgiref.sync import async_to_sync
from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
)
from django.db import transaction
from django.utils.crypto import constant_time_compare
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Type of the event a user's group receives; ChatConsumer.chat_user_check handles it.
USER_CHECK_EVENT = "chat.user_check"


def user_group_name(user_id: object) -> str:
    """Return the channel layer group of a user's chat connections: ``chat.user.<id>``."""
    return f"chat.user.{user_id}"


def session_digest(session_key: str | None) -> str:
    """Return the hash of a session key that events carry instead of the key itself."""
    return hashlib.sha256((session_key or "").encode()).hexdigest()[:32]


def session_is_valid(session_key: str | None, user_id: object) -> bool:
    """Tell whether a session still logs in the user a connection was opened for.

    Reads the session from its store (not the copy loaded at the handshake; with
    ``chat.session_store``, from the database, not its copy in the cache) and
    checks what ``django.contrib.auth.get_user`` checks on a request: the session
    exists and names this user, the user's backend still returns the user (so it
    exists and, with ModelBackend, is active), and the session's password hash
    matches the current one (or one made with a ``SECRET_KEY_FALLBACKS`` key).
    Unlike ``get_user`` it never changes the session. Runs database queries:
    call it in a worker thread.

    Args:
        session_key: the connection's session key.
        user_id: the primary key of the connection's user.
    """
    if not session_key:
        return False
    engine = settings.SESSION_ENGINE
    if engine == "chat.session_store":
        # Its database, not the copy in the cache: a session deleted there counts at once.
        engine = "django.contrib.sessions.backends.db"
    store = import_module(engine).SessionStore(session_key=session_key)
    try:
        stored_id = store[SESSION_KEY]
        backend_path = store[BACKEND_SESSION_KEY]
    except KeyError:
        return False
    if str(stored_id) != str(user_id) or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return False
    user = load_backend(backend_path).get_user(user_id)
    if user is None:
        return False
    session_hash = store.get(HASH_SESSION_KEY)
    if not session_hash or not hasattr(user, "get_session_auth_hash"):
        return False
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return True
    return any(
        constant_time_compare(session_hash, fallback)
        for fallback in user.get_session_auth_fallback_hash()
    )


def renew_session_hash(session: MutableMapping[str, Any]) -> bool:
    """Replace a session's auth hash made with a ``SECRET_KEY_FALLBACKS`` key by the current one.

    After a ``SECRET_KEY`` rotation, Django's ``get_user`` accepts such a hash
    but then gives the session a new key (``cycle_key``), and channels' does not
    accept it at all (it flushes the session): either would cut the user's
    WebSockets, whose session key would then be gone (4401). Renewing the hash
    in place, under the same session key, before either runs avoids both. The
    caller decides whether to save it. Runs a database query: call it in a
    worker thread.

    Args:
        session: a session store, or the dict of a session's data.

    Returns:
        True when the hash was renewed, False when there was nothing to do (no
        fallback keys, no logged-in user, the hash already current, or a hash no
        key made: Django then logs the user out as usual).
    """
    if not settings.SECRET_KEY_FALLBACKS:
        return False
    try:
        user_id = session[SESSION_KEY]
        backend_path = session[BACKEND_SESSION_KEY]
        session_hash = session[HASH_SESSION_KEY]
    except KeyError:
        return False
    if not session_hash or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return False
    user = load_backend(backend_path).get_user(get_user_model()._meta.pk.to_python(user_id))
    if user is None or not hasattr(user, "get_session_auth_hash"):
        return False
    current = user.get_session_auth_hash()
    if constant_time_compare(session_hash, current):
        return False
    if not any(
        constant_time_compare(session_hash, fallback)
        for fallback in user.get_session_auth_fallback_hash()
    ):
        return False
    session[HASH_SESSION_KEY] = current
    return True


def notify_user(user_id: object, session_key: str | None = None) -> None:
    """Tell a user's chat connections to check their session (sync code, e.g. a signal).

    Args:
        user_id: the user's primary key.
        session_key: a session that has ended: its connections close without a check.

    A Redis failure is logged, never raised: logging out must not fail because of it.
    """
    event: dict[str, Any] = {"type": USER_CHECK_EVENT}
    if session_key:
        event["session"] = session_digest(session_key)
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(user_group_name(user_id), event)
    except (RedisError, OSError) as error:
        logger.warning(
            "Could not tell user %s's connections to check their session: %s", user_id, error
        )


def on_logged_out(sender: object, request: Any, user: Any, **kwargs: Any) -> None:
    """``user_logged_out``: close the connections of the session being logged out."""
    if user is None or request is None:
        return
    session = getattr(request, "session", None)
    notify_user(user.pk, getattr(session, "session_key", None))


def on_user_saved(
    sender: object, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    """``post_save`` of the user model: its connections check their session after the commit."""
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    user_id = instance.pk
    transaction.on_commit(lambda: notify_user(user_id))


def on_user_deleted(sender: object, instance: Any, **kwargs: Any) -> None:
    """``post_delete`` of the user model: its connections close (their check fails)."""
    user_id = instance.pk
    transaction.on_commit(lambda: notify_user(user_id))


class SessionRenewingAuthMiddleware(AuthMiddleware):
    """channels' ``AuthMiddleware`` that first renews an old key's session hash, unsaved.

    channels' ``get_user`` accepts no ``SECRET_KEY_FALLBACKS`` hash: it would log
    the user out at the WebSocket handshake after a ``SECRET_KEY`` rotation. The
    renewal stays in this connection's copy of the session (see
    ``config.middleware.SessionHashRenewalMiddleware`` for why it is not saved).
    """

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        """Renew the session's hash when fallback keys are set, then resolve the user."""
        if settings.SECRET_KEY_FALLBACKS and scope.get("session") is not None:
            await database_sync_to_async(renew_session_hash)(scope["session"])
        await super().resolve_scope(scope)


def auth_middleware_stack(inner: Any) -> CookieMiddleware:
    """channels' ``AuthMiddlewareStack`` with ``SessionRenewingAuthMiddleware``."""
    return CookieMiddleware(SessionMiddleware(SessionRenewingAuthMiddleware(inner)))
