"""The room page's history, rendered once and kept in Django's cache until the room changes.

Rendering a room's last ``HISTORY_LENGTH`` messages (one query, 50 rows, a template loop)
was most of the room page's cost. This module keeps the rendered HTML in the default cache
(Redis in production, shared by every process of every app host) and replaces it when a
message of the room is stored, edited or deleted, or an author is renamed.

Two keys per room, both with the ``CHAT_HISTORY_CACHE_SECONDS`` expiry:

- ``chat-history-token:<room>``: a random token. Every change of the room's history sets a
  new one after its transaction commits (any process, any host); a missing token (expired,
  evicted, Redis restarted) is a new random one.
- ``chat-history:<template hash>:<room>``: ``(token, html)``, the fragment and the token it
  was rendered under. It is served only while that token is still the room's current one.

A page reads the token *before* it queries the database, and a writer sets a new token
*after* its commit, so a fragment rendered from data older than a commit is always stored
under a token that commit has already replaced (or will replace): it is never served. Since
a token is only ever replaced, never restored, a fragment can only be served for the exact
state it was rendered from. Every key expires, so whatever Redis evicts or drops is simply
rendered again; nothing is kept for rooms without messages.

Writes that bypass the model signals (``QuerySet.update``, ``bulk_create``, SQL, a database
restore) do not replace the token: their changes show once it expires, within
``CHAT_HISTORY_CACHE_SECONDS``. So does a change whose token could not be written because
Redis was unreachable from that process (logged as a warning).

The cache never fails a page: when Redis does not answer, the page renders from the
database, and this process leaves the cache alone for ``CACHE_RETRY_SECONDS`` before it
reads it again. Invalidations are always attempted.
"""

import hashlib
import logging
import secrets
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.template.loader import get_template, render_to_string
from django.utils.safestring import SafeString, mark_safe
from redis.exceptions import RedisError

from chat.models import Message, Room

logger = logging.getLogger(__name__)

# Template of the fragment: the message list and the "no messages" line.
HISTORY_TEMPLATE = "chat/history.html"
# Seconds a process skips the cache after it failed to answer.
CACHE_RETRY_SECONDS = 5.0

_CACHE_ERRORS = (RedisError, OSError)
_retry_after = 0.0
_template_hash: str | None = None


def token_key(room_name: str) -> str:
    """Return the cache key of a room's current history token."""
    return f"chat-history-token:{room_name}"


def fragment_key(room_name: str) -> str:
    """Return the cache key of a room's rendered history.

    It holds a hash of the fragment's template source, so that releases with different
    templates (both running during a rolling deployment) never serve each other's HTML.
    """
    global _template_hash
    if _template_hash is None:
        source = get_template(HISTORY_TEMPLATE).template.source
        _template_hash = hashlib.sha256(source.encode()).hexdigest()[:12]
    return f"chat-history:{_template_hash}:{room_name}"


def _new_token() -> str:
    return secrets.token_hex(8)


def _cache_failed(error: Exception) -> None:
    global _retry_after
    _retry_after = time.monotonic() + CACHE_RETRY_SECONDS
    logger.warning(
        "The cache failed (%s); room pages render from the database for %g s",
        error,
        CACHE_RETRY_SECONDS,
    )


def render(room_name: str, limit: int) -> tuple[SafeString, int]:
    """Render a room's newest ``limit`` messages from the database, without the cache.

    Returns:
        The HTML and the number of messages in it.
    """
    history = Message.objects.history(room_name, limit)
    return render_to_string(HISTORY_TEMPLATE, {"history": history}), len(history)


def room_history_html(room_name: str, limit: int) -> SafeString:
    """Return the HTML of a room's newest ``limit`` messages, from the cache when it is current.

    Args:
        room_name: the room's name (unknown rooms have an empty history).
        limit: most messages shown (the same for every page: it is not part of the key).

    Returns:
        The rendered ``chat/history.html``: the message list and the "no messages" line.

    Raises:
        django.db.DatabaseError: the database failed (the cache's errors are never raised).
    """
    seconds = settings.CHAT_HISTORY_CACHE_SECONDS
    if seconds <= 0 or time.monotonic() < _retry_after:
        return render(room_name, limit)[0]
    try:
        token = cache.get(token_key(room_name))
        if token is not None:
            cached = cache.get(fragment_key(room_name))
            if cached is not None and cached[0] == token:
                return mark_safe(cached[1])  # noqa: S308 (rendered by render(), escaped)
    except _CACHE_ERRORS as error:
        _cache_failed(error)
        return render(room_name, limit)[0]
    # The token was read before this query: a commit after it has replaced the token.
    html, count = render(room_name, limit)
    if not count:
        return html  # Nothing to keep for a room without messages.
    try:
        if token is None:
            token = _new_token()
            # A writer's token that came meanwhile wins; this fragment is then not stored.
            if not cache.add(token_key(room_name), token, seconds):
                return html
        cache.set(fragment_key(room_name), (token, str(html)), seconds)
    except _CACHE_ERRORS as error:
        _cache_failed(error)
    return html


def invalidate(room_names: list[str]) -> None:
    """Give each named room a new history token now, so its cached history is not served.

    Call it after the change is committed (``transaction.on_commit``). A cache error is
    logged, never raised: the change is stored, and the fragment expires on its own.

    Args:
        room_names: the rooms whose history changed.
    """
    seconds = settings.CHAT_HISTORY_CACHE_SECONDS
    if seconds <= 0:
        return
    for name in dict.fromkeys(room_names):
        try:
            cache.set(token_key(name), _new_token(), seconds)
        except _CACHE_ERRORS as error:
            logger.warning(
                "Could not invalidate the cached history of room %s (%s); it may show "
                "for up to %s s without its newest change",
                name,
                error,
                seconds,
            )


def invalidate_on_commit(room_names: list[str]) -> None:
    """Run :func:`invalidate` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: invalidate(room_names))


def on_message_changed(sender: object, instance: Message, **kwargs: Any) -> None:
    """``post_save`` / ``post_delete`` of a message: its room's history changes at the commit.

    ``Message.post`` hands the room over with the message, so storing costs no query here;
    otherwise (admin edits, deletions, cascades) the room's name is read.
    """
    if Message.room.is_cached(instance):
        name = instance.room.name
    else:
        name = Room.objects.filter(pk=instance.room_id).values_list("name", flat=True).first()
    if name is not None:
        invalidate_on_commit([name])


def on_room_changed(sender: object, instance: Room, **kwargs: Any) -> None:
    """``pre_save`` / ``pre_delete`` of a room: both its old and new names change at the commit."""
    names = [instance.name]
    if instance.pk is not None:
        names += Room.objects.filter(pk=instance.pk).values_list("name", flat=True)
    invalidate_on_commit(names)


def on_user_saved(
    sender: object, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    """``post_save`` of the user model: a rename changes every room the user wrote in.

    A new user has no messages; a save that cannot have changed the username
    (``update_fields`` without it, such as a login's ``last_login``) changes nothing.
    """
    username_field = get_user_model().USERNAME_FIELD
    if created or (update_fields is not None and username_field not in update_fields):
        return
    names = list(
        Room.objects.filter(messages__author_id=instance.pk)
        .values_list("name", flat=True)
        .distinct()
    )
    if names:
        invalidate_on_commit(names)
