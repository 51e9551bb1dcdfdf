"""The chat WebSocket consumer, served at ``/ws/chat/<room>/``.

The protocol (frames, error codes, close codes) is described in app/README.md.
Every frame a client sends costs one token of the frame budget all sockets of
its user share (in Redis, chat/limits.py), after one of a per-connection bucket
of the same size that spares Redis a flood; a frame that breaks a rule gets an
``error`` frame back and the connection stays open. A user holds at most
``CHAT_WS_MAX_PER_USER`` sockets (4429 beyond), a connection closes with 4401
when its session ends (chat/sessions.py), and the process's watcher pushes the
messages a connection missed (chat/resync.py).
Database work runs in a worker thread through ``database_sync_to_async``, so the
event loop never waits on PostgreSQL.
"""

import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError
from redis.exceptions import RedisError

from chat import limits, metrics, resync
from chat.models import MAX_TEXT_LENGTH, Message
from chat.ratelimit import TokenBucket
from chat.rooms import group_name, is_valid_room_name
from chat.servers import private_mirror, server_group_name
from chat.sessions import session_digest, session_is_valid, user_group_name

logger = logging.getLogger(__name__)

# Close codes, sent after accepting the connection so that browsers see them.
CLOSE_INVALID_ROOM = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_UNKNOWN_PATH = 4404
CLOSE_TOO_MANY_SOCKETS = 4429
# The channel layer failed while the connection joined its groups: try again later.
# (1011's private mirror, see servers.private_mirror: daphne cannot send 1011.)
CLOSE_TRY_AGAIN = 4011

# Most messages one chat.catchup replays; more missed ones need another request.
CATCHUP_LIMIT = 100

# Frames longer than this many characters are refused before parsing. A text of
# MAX_TEXT_LENGTH characters fits even when every one is a JSON escape.
MAX_FRAME_LENGTH = 16 * MAX_TEXT_LENGTH

# Message ids are PostgreSQL bigints.
MAX_MESSAGE_ID = 2**63 - 1


# The keys of a ``chat.message`` frame, in the order they are sent (``models.message_frame``).
MESSAGE_FRAME_KEYS = ("type", "id", "author", "text", "sent_at")

# Encoded frames a process keeps: the newest messages of its busiest rooms.
ENCODED_FRAMES_KEPT = 256

# Ids a connection remembers of the messages it replayed (catch-up, resync) and has not
# seen broadcast yet: the broadcast of such a message, arriving later, is not sent again.
# One replay sends at most CATCHUP_LIMIT (or resync.RESYNC_LIMIT, also 100) messages.
REPLAYED_KEPT = 2 * CATCHUP_LIMIT


def encode_frame(content: Mapping[str, Any]) -> str:
    """Encode a frame as compact JSON, keeping non-ASCII text as is."""
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))


class EncodedFrames:
    """The JSON text of recent ``chat.message`` frames, shared by the connections of a process.

    A message broadcast to a room reaches the consumer of every member in this process as
    an event of its own, all with the same content: the first consumer encodes it, the
    others send the same text. The key is the whole content (id, author, text, time), so a
    frame whose content differs (a message edited in the admin, read again by a catch-up)
    is encoded afresh; the ``size`` newest keys are kept, the oldest dropped first.

    Args:
        size: how many encoded frames to keep (at least 1).
    """

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._texts: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        # Frames encoded so far (cache misses), for tests and profiling.
        self.encoded = 0

    def text(self, frame: Mapping[str, Any]) -> str:
        """Return the JSON text of a ``chat.message`` frame (its MESSAGE_FRAME_KEYS only).

        Args:
            frame: a frame or broadcast event with the keys of MESSAGE_FRAME_KEYS.

        Raises:
            KeyError: a key of MESSAGE_FRAME_KEYS is missing.
            TypeError: a value cannot be encoded as JSON or used as a key (not hashable).
        """
        key = tuple(frame[name] for name in MESSAGE_FRAME_KEYS)
        text = self._texts.get(key)
        if text is None:
            text = encode_frame(dict(zip(MESSAGE_FRAME_KEYS, key, strict=True)))
            self.encoded += 1
            self._texts[key] = text
            if len(self._texts) > self.size:
                self._texts.popitem(last=False)
        return text


# The process's encoded frames (each server process runs one event loop).
encoded_frames = EncodedFrames(ENCODED_FRAMES_KEPT)


class SessionEnded(Exception):
    """The connection's session no longer logs its user in."""


@database_sync_to_async
def post_message(
    room_name: str, author: AbstractBaseUser, text: str, session_key: str | None
) -> dict[str, Any]:
    """Store a message (see ``Message.post``) and return its ``chat.message`` frame.

    Raises:
        SessionEnded: the session is gone (logout, password change, deactivation).
        django.db.DatabaseError: the database failed.
    """
    if not session_is_valid(session_key, author.pk):
        raise SessionEnded
    return Message.post(room_name, author, text).as_frame()


@database_sync_to_async
def check_session(session_key: str | None, user_id: object) -> bool:
    """``sessions.session_is_valid`` in a worker thread."""
    return session_is_valid(session_key, user_id)


@database_sync_to_async
def newest_message_id(room_name: str) -> int:
    """Return the id of the newest message of a room, 0 if it has none."""
    newest = Message.objects.filter(room__name=room_name).order_by("-id").values("id").first()
    return newest["id"] if newest else 0


@database_sync_to_async
def messages_after(room_name: str, after_id: int, limit: int) -> list[dict[str, Any]]:
    """Return the frames of up to ``limit`` messages of a room after ``after_id``, oldest first."""
    return [message.as_frame() for message in Message.objects.after(room_name, after_id, limit)]


class FrameError(Exception):
    """A client frame breaks a rule; becomes an ``error`` frame with ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def clean_text(text: object) -> str:
    """Return the text of a ``chat.message`` frame, trimmed.

    Raises:
        FrameError: not a string (``invalid_text``), empty after trimming
            (``empty_text``), longer than MAX_TEXT_LENGTH characters
            (``text_too_long``), or holding what PostgreSQL cannot store: NUL or
            a lone surrogate from a JSON ``\\ud800`` escape (``invalid_text``).
    """
    if not isinstance(text, str):
        raise FrameError("invalid_text", "'text' must be a string.")
    text = text.strip()
    if not text:
        raise FrameError("empty_text", "The message is empty.")
    if len(text) > MAX_TEXT_LENGTH:
        raise FrameError("text_too_long", f"Messages are at most {MAX_TEXT_LENGTH} characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FrameError("invalid_text", "The message is not valid Unicode.") from None
    if "\x00" in text:
        raise FrameError("invalid_text", "The message holds a NUL character.")
    return text


def clean_after(after: object) -> int:
    """Return the ``after`` id of a ``chat.catchup`` frame.

    Raises:
        FrameError: not an integer (booleans and floats included) or outside
            0..2**63-1 (``invalid_after``).
    """
    if type(after) is not int or not 0 <= after <= MAX_MESSAGE_ID:
        raise FrameError("invalid_after", "'after' must be a non-negative integer message id.")
    return after


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """One client's connection to one room.

    On connect: unauthenticated users are closed with 4401, invalid room names
    with 4400, a user who already holds ``CHAT_WS_MAX_PER_USER`` sockets with
    4429; otherwise the connection joins the room's group, the group of this
    server (``CHAT_SERVER_ID``, see chat/servers.py) and its user's group
    (``chat.user.<id>``, see chat/sessions.py), and the process's watcher
    (chat/resync.py). Frames from the client are ``chat.message`` (store, then
    broadcast to the room) and ``chat.catchup`` (replay stored messages the
    client missed). A ``chat.server_close`` event to the server's group closes
    the connection with the code it carries (1012 before a restart); a
    ``chat.user_check`` event closes it with 4401 once its session has ended.
    """

    room_name: str | None = None
    groups_joined: tuple[str, ...] = ()
    user_id: object = None
    session_key: str | None = None
    # Newest message id this connection has sent its client (or the room's newest at connect).
    delivered: int = 0
    # Ids of replayed messages whose broadcast has not come yet (oldest first; see
    # REPLAYED_KEPT). Set per connection in connect; empty while nothing was replayed.
    replayed: dict[int, None]
    watched: bool = False
    counted: bool = False
    # Counted in the WebSocket and room gauges (chat/metrics.py).
    measured: bool = False

    async def connect(self) -> None:
        """Check the user, the room and the user's socket count; join the groups; accept."""
        self.bucket = TokenBucket(settings.CHAT_WS_RATE_BURST, settings.CHAT_WS_RATE_PER_SECOND)
        self.replayed = {}
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED, reason="authentication required")
            return
        room_name = self.scope["url_route"]["kwargs"]["room_name"]
        if not is_valid_room_name(room_name):
            await self.accept()
            await self.close(code=CLOSE_INVALID_ROOM, reason="invalid room name")
            return
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        if not await limits.register_socket(
            user.pk, self.channel_name, settings.CHAT_WS_MAX_PER_USER
        ):
            await self.accept()
            await self.close(code=CLOSE_TOO_MANY_SOCKETS, reason="too many connections")
            return
        self.user_id = user.pk
        self.counted = True
        groups = (
            group_name(room_name),
            server_group_name(settings.CHAT_SERVER_ID),
            user_group_name(user.pk),
        )
        try:
            for group in groups:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined += (group,)
            self.delivered = await newest_message_id(room_name)
        except (RedisError, OSError, DatabaseError) as error:
            logger.warning(
                "Connection refused for now: could not join room %s: %s", room_name, error
            )
            await self.accept()
            await self.close(code=CLOSE_TRY_AGAIN, reason="service unavailable, try again")
            return
        self.room_name = room_name
        await self.accept()
        resync.watcher().add(self)
        self.watched = True
        metrics.websocket_joined(room_name)
        self.measured = True

    async def disconnect(self, code: int) -> None:
        """Leave the watcher, the socket count and the groups the connection had joined."""
        if self.measured:
            metrics.websocket_left(self.room_name)
            self.measured = False
        if self.watched:
            resync.watcher().discard(self)
            self.watched = False
        if self.counted:
            self.counted = False
            await limits.unregister_socket(self.user_id, self.channel_name)
        for group in self.groups_joined:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except (RedisError, OSError):
                # The layer forgets the subscription with the connection anyway.
                logger.warning("Could not leave group %s", group, exc_info=True)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """Rate limit, then parse one frame; answer an error frame instead of raising."""
        if self.room_name is None:
            return  # Closing: a refused connection has no room.
        if not await self.take_token():
            await self.send_error(
                "rate_limited",
                f"Too many frames: at most {settings.CHAT_WS_RATE_BURST} at once, then "
                f"{settings.CHAT_WS_RATE_PER_SECOND:g} per second, over all your connections.",
            )
            return
        if text_data is None:
            await self.send_error("invalid_json", "Frames must be JSON text, not binary.")
            return
        if len(text_data) > MAX_FRAME_LENGTH:
            await self.send_error(
                "frame_too_large", f"Frames are at most {MAX_FRAME_LENGTH} characters."
            )
            return
        try:
            content = await self.decode_json(text_data)
        except (ValueError, RecursionError):
            await self.send_error("invalid_json", "The frame is not valid JSON.")
            return
        if not isinstance(content, dict):
            await self.send_error("invalid_json", "The frame must be a JSON object.")
            return
        await self.receive_json(content, **kwargs)

    async def take_token(self) -> bool:
        """Take one token of this connection's bucket, then one of the user's shared budget.

        The local bucket (same size) is checked first, so a flood on one socket costs
        Redis nothing; without Redis, the local bucket alone decides.
        """
        if not self.bucket.take():
            return False
        shared = await limits.take_frame_token(
            self.user_id, settings.CHAT_WS_RATE_BURST, settings.CHAT_WS_RATE_PER_SECOND
        )
        return shared is not False

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        """Dispatch a parsed frame on its ``type``."""
        kind = content.get("type")
        try:
            if kind == "chat.message":
                await self.post(clean_text(content.get("text")))
            elif kind == "chat.catchup":
                await self.catch_up(clean_after(content.get("after")))
            else:
                raise FrameError("unknown_type", "'type' must be 'chat.message' or 'chat.catchup'.")
        except FrameError as error:
            await self.send_error(error.code, error.message)

    async def post(self, text: str) -> None:
        """Store and broadcast one message from this client (text already cleaned)."""
        try:
            frame = await post_message(self.room_name, self.scope["user"], text, self.session_key)
        except SessionEnded:
            await self.close(code=CLOSE_UNAUTHENTICATED, reason="session ended")
            return
        except DatabaseError:
            logger.exception("Could not store a message in room %s", self.room_name)
            await self.send_error("server_error", "The message could not be stored; try again.")
            return
        metrics.message_stored()
        room_group = self.groups_joined[0]
        for attempt in (1, 2):
            try:
                await self.channel_layer.group_send(room_group, frame)
                metrics.message_broadcast()
                return
            except (RedisError, OSError, ChannelFull) as error:
                # After a Redis restart the first publish meets the dead pooled connection
                # (channels-redis 4.3 does not retry it); a second attempt gets a new one.
                if attempt == 2:
                    logger.warning("Could not broadcast message %s: %s", frame["id"], error)
                    metrics.broadcast_failed()
        # Stored: the watchers of every process push it to the room's other connections
        # (chat/resync.py); this one gets it now.
        await self.send_json(frame)

    async def catch_up(self, after: int) -> None:
        """Replay up to CATCHUP_LIMIT stored messages with an id above ``after``.

        When more were missed, an ``error`` frame with code ``catchup_truncated``
        follows the replayed ones; the client asks again from its newest id.
        """
        try:
            frames = await messages_after(self.room_name, after, CATCHUP_LIMIT + 1)
        except DatabaseError:
            logger.exception("Could not read messages of room %s", self.room_name)
            await self.send_error("server_error", "Missed messages could not be read; try again.")
            return
        for frame in frames[:CATCHUP_LIMIT]:
            await self.send_replayed(frame)
        if len(frames) > CATCHUP_LIMIT:
            await self.send_error(
                "catchup_truncated",
                f"Replayed the first {CATCHUP_LIMIT} missed messages; ask again for more.",
            )

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Run the handler of a message; room broadcasts skip the database clean-up.

        Channels closes stale database connections before every handler, which costs a hop to
        a worker thread. ``chat.message`` events (one per client for every message sent in the
        room) never touch the database, so they go straight to :meth:`chat_message`; measured
        with ``make bench``, that hop was the largest cost of a broadcast. Everything else
        (connects, client frames) keeps Channels' behaviour.
        """
        if message.get("type") == "chat.message":
            await self.chat_message(message)
        else:
            await super().dispatch(message)

    async def chat_server_close(self, event: dict[str, Any]) -> None:
        """Close the connection as the server's group was told to (``close_websockets``).

        The client sees the event's code (1012: the server restarts, reconnect at
        once) and catches up on its next connection; leaving the groups follows in
        :meth:`disconnect`. A server that cannot send a registered code (daphne,
        whose autobahn sends only 1000 and 3000..4999) closes with its private
        mirror instead (``servers.private_mirror``: 1012 becomes 4012). uvicorn
        (the websockets library) and gunicorn's ASGI worker send 1012 as it is, so
        their clients see the registered code.
        """
        code = event["code"]
        reason = event.get("reason") or None
        logger.debug("Closing a connection of room %s with %s", self.room_name, code)
        if 1000 < code < 3000:
            try:
                await self.close(code=code, reason=reason)
            except Exception as error:  # autobahn raises a bare Exception.
                # daphne (autobahn) sends only 1000 and 3000..4999: the private mirror.
                logger.debug(
                    "Server refused close code %s (%s); closing with %s",
                    code,
                    error,
                    private_mirror(code),
                )
                await self.close(code=private_mirror(code), reason=reason)
            return
        await self.close(code=code, reason=reason)

    async def chat_message(self, event: dict[str, Any]) -> None:
        """Forward a message broadcast to the room's group to this client.

        A message this connection already replayed (its broadcast came late: after a
        Redis restart, or after the client's catch-up read it) is not sent twice. The
        frame's text is encoded once per process (``encoded_frames``), not once per
        member of the room.
        """
        if self.replayed and self.replayed.pop(event["id"], False) is None:
            return
        await self.send_json(event)

    async def push_missed(self, frames: list[dict[str, Any]]) -> None:
        """Send the frames (oldest first) this client has not had; the watcher calls it."""
        for frame in frames:
            if frame["id"] > self.delivered and self.room_name is not None:
                await self.send_replayed(frame)

    async def send_replayed(self, frame: dict[str, Any]) -> None:
        """Send a stored message outside its broadcast and remember its id (``replayed``).

        Only the newest REPLAYED_KEPT ids are kept: the broadcast of an older one is
        long lost, or it came before the replay.
        """
        self.replayed[frame["id"]] = None
        while len(self.replayed) > REPLAYED_KEPT:
            del self.replayed[next(iter(self.replayed))]
        await self.send_json(frame)

    async def chat_user_check(self, event: dict[str, Any]) -> None:
        """Close with 4401 if this connection's session has ended (see chat/sessions.py).

        An event naming this connection's session (a logout) closes it at once: the
        session still exists while the logout signal runs. Otherwise the session is
        read again and checked. A password change in this session's own browser also
        ends it: Django gives that browser a new session key, so its client reconnects.
        """
        if self.room_name is None:
            return
        if event.get("session") == session_digest(self.session_key):
            await self.close(code=CLOSE_UNAUTHENTICATED, reason="logged out")
            return
        try:
            if await check_session(self.session_key, self.user_id):
                return
        except DatabaseError as error:
            logger.warning("Could not check a connection's session: %s", error)
            return
        await self.close(code=CLOSE_UNAUTHENTICATED, reason="session ended")

    async def send_json(self, content: dict[str, Any], close: bool = False) -> None:
        """Send a frame; a ``chat.message`` one also moves ``delivered`` on.

        A ``chat.message`` frame goes out with its MESSAGE_FRAME_KEYS only, as the text
        ``encoded_frames`` keeps for it; other frames are encoded each time.
        """
        if content.get("type") == "chat.message":
            self.delivered = max(self.delivered, content["id"])
            await self.send(text_data=encoded_frames.text(content), close=close)
            return
        await super().send_json(content, close=close)

    async def send_error(self, code: str, message: str) -> None:
        """Send an ``error`` frame; the connection stays open."""
        await self.send_json({"type": "error", "code": code, "message": message})

    @classmethod
    async def encode_json(cls, content: dict[str, Any]) -> str:
        """Encode a frame as compact JSON, keeping non-ASCII text as is."""
        return encode_frame(content)
