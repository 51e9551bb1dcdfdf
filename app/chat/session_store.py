"""Sessions in PostgreSQL with a copy in the cache (Redis): Django's ``cached_db``, safe in outages.

A request then reads its session from Redis instead of PostgreSQL. Django's ``cached_db``
store already falls back to the database when the cache cannot *read*, but two of its
writes are not guarded: the copy it puts in the cache after such a fallback (so an
unreachable Redis turned every page into a 500), and the deletion of the copy at logout,
which it attempts only after the database row is gone (so a logout while Redis was
unreachable failed, and the copy came back with Redis, still logged in, until it expired).

This store differs in exactly those places:

* reading: a cache error reads the database and leaves the cache alone;
* ``exists``: a cache error asks the database;
* saving: when the copy cannot be written an older one is deleted, so it is not served;
* deleting (logout): the copy in the cache goes first; when that fails the session stays
  in both places and the error is raised, so the logout fails visibly instead of
  half-succeeding (the key a login or password change leaves behind logs nobody in: its
  deletion may fail). The copy is
  deleted once more after the database row, in case a request put it back meanwhile.

* the copy lives ``CACHE_SECONDS`` at most (cached_db keeps it as long as the session):
  a session removed from the database behind the app's back (SQL, a restore) stops
  logging in within that time. The WebSocket consumer's check before each stored message
  reads the database itself (``chat.sessions.session_is_valid``), so it sees such a removal
  at once.

Select it with ``SESSION_ENGINE = "chat.session_store"``. The cache keys start with
``django.contrib.sessions.cached_db`` under the cache's ``KEY_PREFIX``; the app's Redis
user needs ``DEL`` on them besides ``GET SET EXISTS``.
"""

import logging

from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

_CACHE_ERRORS = (RedisError, OSError)
# Seconds a session's copy stays in the cache at most.
CACHE_SECONDS = 300


class SessionStore(cached_db.SessionStore):
    """``cached_db`` whose cache errors fall back to the database, and whose deletion is
    refused (raised) rather than half done when the cache cannot delete its copy."""

    def load(self) -> dict:
        """Return the session's data: from the cache, else from the database (then cached)."""
        try:
            data = self._cache.get(self.cache_key)
        except _CACHE_ERRORS as error:
            logger.warning("Sessions: the cache failed (%s), reading the database", error)
            return DatabaseStore.load(self)
        except Exception:  # cached_db's rule: a key the cache refuses resets the session
            data = None
        if data is not None:
            return data
        stored = self._get_session_from_db()
        if not stored:
            return {}
        data = self.decode(stored.session_data)
        try:
            seconds = min(self.get_expiry_age(expiry=stored.expire_date), CACHE_SECONDS)
            self._cache.set(self.cache_key, data, seconds)
        except _CACHE_ERRORS as error:
            logger.warning("Sessions: could not copy a session into the cache (%s)", error)
        return data

    def save(self, must_create: bool = False) -> None:
        """Save the session in the database, then its copy in the cache.

        When the copy cannot be written, an older copy is deleted instead (else the cache
        would keep serving it); when that fails too, the error is logged.
        """
        DatabaseStore.save(self, must_create)
        try:
            seconds = min(self.get_expiry_age(), CACHE_SECONDS)
            self._cache.set(self.cache_key, self._session, seconds)
        except _CACHE_ERRORS as error:
            try:
                self._cache.delete(self.cache_key)
            except _CACHE_ERRORS:
                logger.error("Sessions: could not update a session's copy in the cache (%s)", error)

    def exists(self, session_key: str) -> bool:
        """Tell whether a session key is taken, in the cache or the database."""
        try:
            if session_key and (self.cache_key_prefix + session_key) in self._cache:
                return True
        except _CACHE_ERRORS as error:
            logger.warning("Sessions: the cache failed (%s), asking the database", error)
        return DatabaseStore.exists(self, session_key)

    def cycle_key(self) -> None:
        """Move the session's data to a new key (login, password change); drop the old one.

        The old key's deletion is allowed to fail: at a login it held no user, after a
        password change its auth hash no longer matches, so it logs nobody in.
        """
        data = self._session
        old_key = self.session_key
        self.create()
        self._session_cache = data
        if old_key:
            try:
                self.delete(old_key)
            except _CACHE_ERRORS as error:
                logger.warning("Sessions: could not delete the key a session left (%s)", error)

    def delete(self, session_key: str | None = None) -> None:
        """Delete a session from the cache, then the database, then the cache again.

        Raises:
            redis.exceptions.RedisError, OSError: the cache could not delete its copy; the
                session was left in place (in both stores).
        """
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        key = self.cache_key_prefix + session_key
        self._cache.delete(key)
        DatabaseStore.delete(self, session_key)
        try:
            self._cache.delete(key)
        except _CACHE_ERRORS as error:
            logger.warning("Sessions: could not delete a session's copy again (%s)", error)
