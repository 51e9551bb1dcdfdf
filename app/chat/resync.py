"""No silent loss: each daphne process replays what its connections missed.

A room broadcast goes through Redis pub/sub, which keeps nothing: a message
published while Redis restarts, or while a process has not yet subscribed again
after it (channels-redis 4.3 waits a second after a failed read before it
reconnects), reaches nobody, although PostgreSQL stored it. So every process
runs one watcher (per event loop) over its open chat connections:

- each connection remembers the newest message id it has sent its client
  (``ChatConsumer.delivered``: live, replayed, or the room's newest at connect);
- every ``CHAT_RESYNC_INTERVAL`` seconds the watcher reads the newest message id
  of each room it has connections in (one query for all of them);
- a connection still behind the newest id the *previous* tick saw (so a message
  that has been stored for at least one interval and not reached it) gets the
  missed messages pushed as ordinary ``chat.message`` frames, up to
  ``CATCHUP_LIMIT`` per tick (one query per room, shared by its connections).

This covers a failed broadcast by the sender, a receiver's lost subscription and
a Redis restart alike, and works while Redis is still down (delivery then falls
back to these ticks). A pushed message's broadcast, if it comes after all, is not
sent again (``ChatConsumer.replayed``). The same ticks renew
the connections' entries in the per-user socket count (chat/limits.py).
"""

import asyncio
import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.db.models import OuterRef, Subquery
from redis.exceptions import RedisError

from chat import limits
from chat.models import Message, Room

if TYPE_CHECKING:
    from chat.consumers import ChatConsumer

logger = logging.getLogger(__name__)

# Most messages pushed to one connection per tick; the next tick goes on.
RESYNC_LIMIT = 100


@database_sync_to_async
def newest_ids(room_names: list[str]) -> dict[str, int]:
    """Return the newest message id of each named room that has messages.

    One query; each room's id comes from the (room, id) index read backwards.

    Raises:
        django.db.DatabaseError: the database failed.
    """
    newest = Message.objects.filter(room=OuterRef("pk")).order_by("-id").values("id")[:1]
    rows = (
        Room.objects.filter(name__in=room_names)
        .annotate(newest=Subquery(newest))
        .values_list("name", "newest")
    )
    return {name: pk for name, pk in rows if pk is not None}


@database_sync_to_async
def frames_after(room_name: str, after_id: int, limit: int) -> list[dict[str, Any]]:
    """Return the frames of up to ``limit`` messages of a room after ``after_id``, oldest first."""
    return [message.as_frame() for message in Message.objects.after(room_name, after_id, limit)]


class Watcher:
    """The connections of one event loop, and the task that keeps them caught up."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[ChatConsumer]] = {}
        # Newest message id per room, as the previous tick read it.
        self.seen: dict[str, int] = {}
        self.task: asyncio.Task[None] | None = None
        self.last_refresh = time.monotonic()

    def add(self, consumer: "ChatConsumer") -> None:
        """Watch a connection that has joined its room; start the task if it was idle."""
        self.rooms.setdefault(consumer.room_name, set()).add(consumer)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run())

    def discard(self, consumer: "ChatConsumer") -> None:
        """Stop watching a connection (it closed)."""
        members = self.rooms.get(consumer.room_name)
        if members is None:
            return
        members.discard(consumer)
        if not members:
            del self.rooms[consumer.room_name]
            self.seen.pop(consumer.room_name, None)

    async def run(self) -> None:
        """Tick every CHAT_RESYNC_INTERVAL seconds while any connection is watched."""
        while self.rooms:
            await asyncio.sleep(settings.CHAT_RESYNC_INTERVAL)
            try:
                await self.tick()
            except Exception:
                # The watcher must outlive any one failure; the next tick tries again.
                logger.exception("Catch-up tick failed")

    async def tick(self) -> None:
        """Push missed messages to connections that are behind; renew socket entries."""
        if not self.rooms:
            return
        try:
            current = await newest_ids(list(self.rooms))
        except DatabaseError as error:
            logger.warning("Catch-up tick skipped (database failed: %s)", error)
            current = None
        if current is not None:
            previous, self.seen = self.seen, current
            for room_name, members in list(self.rooms.items()):
                threshold = previous.get(room_name)
                if threshold is None:
                    continue
                behind = [c for c in members if c.delivered < threshold]
                if behind:
                    await self.resync(room_name, behind)
        if time.monotonic() - self.last_refresh >= limits.SOCKET_REFRESH_SECONDS:
            await self.refresh()

    async def resync(self, room_name: str, behind: list["ChatConsumer"]) -> None:
        """Send each connection in ``behind`` the messages of its room it has not had."""
        after = min(consumer.delivered for consumer in behind)
        try:
            frames = await frames_after(room_name, after, RESYNC_LIMIT)
        except DatabaseError as error:
            logger.warning("Could not read missed messages of room %s: %s", room_name, error)
            return
        logger.info(
            "Pushing missed messages of room %s to %d connection(s)", room_name, len(behind)
        )
        for consumer in behind:
            try:
                await consumer.push_missed(frames)
            except Exception:
                logger.warning("Could not push missed messages to a connection", exc_info=True)

    async def refresh(self) -> None:
        """Renew the per-user socket entries of every watched connection."""
        self.last_refresh = time.monotonic()
        sockets = [
            (consumer.user_id, consumer.channel_name)
            for members in self.rooms.values()
            for consumer in members
            if consumer.user_id is not None
        ]
        try:
            await limits.refresh_sockets(sockets)
        except (RedisError, OSError) as error:
            logger.warning("Could not renew socket entries (Redis failed: %s)", error)


_watchers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watcher]" = (
    weakref.WeakKeyDictionary()
)


def watcher() -> Watcher:
    """Return the watcher of the running event loop (one per daphne process)."""
    loop = asyncio.get_running_loop()
    found = _watchers.get(loop)
    if found is None:
        found = _watchers[loop] = Watcher()
    return found
