"""``manage.py resign_sessions``: re-sign every live session with the current SECRET_KEY.

Part of a ``SECRET_KEY`` rotation (docs/runbook.md, "Rotating secrets"): once
the servers run with the new key and the old one in ``SECRET_KEY_FALLBACKS``,
this makes every unexpired session independent of the old key (its data signed
with the new key, its auth hash the new key's, under the same session key), so
that the old key can leave the fallbacks without logging anybody out.
Sessions already signed with the current key are left alone, so a second run
changes nothing. Needs the database session backend, or ``chat.session_store`` (the
database with a copy of each session in the cache): a re-signed session's copy is then
deleted, so that the next request reads the renewed one from the database.
"""

from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core import signing
from django.core.cache import caches
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from chat.sessions import renew_session_hash


class Command(BaseCommand):
    """Re-sign the sessions an old SECRET_KEY signed; print how many."""

    help = (
        "Re-sign every unexpired session that an old key (SECRET_KEY_FALLBACKS) signed with "
        "SECRET_KEY, renewing its auth hash, under the same session key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        """Re-sign the sessions; prints ``re-signed N of M sessions``.

        Raises:
            CommandError: the session backend is neither the database nor
                ``chat.session_store``, or the cache failed to delete a re-signed session's
                copy (those before it are re-signed; run it again).
        """
        engines = ("django.contrib.sessions.backends.db", "chat.session_store")
        if settings.SESSION_ENGINE not in engines:
            raise CommandError(f"SESSION_ENGINE {settings.SESSION_ENGINE} is not the database")
        cached = settings.SESSION_ENGINE == "chat.session_store"
        cache = caches[settings.SESSION_CACHE_ALIAS] if cached else None
        store = SessionStore()
        resigned = total = 0
        for row in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
            total += 1
            try:
                signing.loads(
                    row.session_data,
                    key=settings.SECRET_KEY,
                    fallback_keys=[],
                    salt=store.key_salt,
                    serializer=store.serializer,
                )
                continue
            except signing.BadSignature:
                pass
            data = store.decode(row.session_data)
            if not data:
                # No key signed it: it logs nobody in, leave it to expire.
                continue
            renew_session_hash(data)
            row.session_data = store.encode(data)
            row.save(update_fields=["session_data"])
            if cache is not None:
                try:
                    cache.delete(KEY_PREFIX + row.session_key)
                except Exception as error:
                    raise CommandError(
                        f"re-signed {resigned + 1} sessions, then the cache failed to drop the "
                        f"old copy of one ({error}); run the command again"
                    ) from error
            resigned += 1
        self.stdout.write(f"re-signed {resigned} of {total} sessions")
