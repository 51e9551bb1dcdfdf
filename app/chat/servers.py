"""Per-server groups: telling the WebSocket clients of one server to go elsewhere.

Every chat connection also joins the group of the server it runs on, named from
the ``CHAT_SERVER_ID`` setting (the host name by default). Before a server
restarts, ``manage.py close_websockets`` on that host sends one event to the
group; each consumer in it closes its connection with the code the event
carries (1012, "service restart", by default), and clients reconnect at once
to a server that is up and catch up on what they missed.
"""

import hashlib
import re

from channels.layers import get_channel_layer

# Type of the event a server group receives; ChatConsumer.chat_server_close handles it.
SERVER_CLOSE_EVENT = "chat.server_close"

# RFC 6455 close code 1012: the server is restarting; the client may reconnect at once.
CLOSE_SERVICE_RESTART = 1012

# A server whose WebSocket library sends only 1000 and 3000..4999 (daphne:
# autobahn's sendClose raises "invalid close code 1012 (must be 1000 or from
# [3000, 4999])") closes with the registered code's mirror in the private
# range instead: 4000 + (code - 1000), so 1012 becomes 4012.
PRIVATE_MIRROR_OFFSET = 3000


def private_mirror(code: int) -> int:
    """Return the private-range stand-in (4000..4999) of a registered close code.

    Args:
        code: a close code from 1001 to 1999.

    Returns:
        ``code + 3000`` (1012 gives 4012).
    """
    return code + PRIVATE_MIRROR_OFFSET


_GROUP_PREFIX = "chat.server."
# Channel layers accept group names shorter than 100 characters.
_GROUP_NAME_LIMIT = 99
_INVALID_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")

# Close codes a server may send (RFC 6455 section 7.4 and the registered and
# private ranges); 1005, 1006 and 1015 are never sent on the wire.
_SENDABLE_CODES = frozenset({1000, 1001, 1008, 1011, 1012, 1013})
# The reason of a close frame is at most 123 bytes of UTF-8.
MAX_REASON_BYTES = 123


def server_group_name(server_id: str) -> str:
    """Return the channel layer group of the chat connections of one server.

    Characters a group name cannot hold become ``_``; an id too long for the
    layers' limit is cut and ends with a hash of the whole id, so two long ids
    that share a beginning still get two groups.

    Args:
        server_id: the ``CHAT_SERVER_ID`` setting, e.g. ``app1.example.net``.

    Raises:
        ValueError: ``server_id`` is empty or only white space.
    """
    server_id = server_id.strip()
    if not server_id:
        raise ValueError("The server id is empty: set CHAT_SERVER_ID or give the host a name.")
    name = _GROUP_PREFIX + _INVALID_CHARACTERS.sub("_", server_id)
    if len(name) > _GROUP_NAME_LIMIT:
        digest = hashlib.sha256(server_id.encode()).hexdigest()[:12]
        name = f"{name[: _GROUP_NAME_LIMIT - len(digest) - 1]}.{digest}"
    return name


def check_close(code: int, reason: str) -> None:
    """Check that a close code and reason can go into a WebSocket close frame.

    Args:
        code: 1000, 1001, 1008, 1011, 1012 or 1013, or 3000..4999.
        reason: at most MAX_REASON_BYTES bytes once encoded as UTF-8.

    Raises:
        ValueError: the code may not be sent, or the reason is too long; the
            message says which.
    """
    if code not in _SENDABLE_CODES and not 3000 <= code <= 4999:
        raise ValueError(
            f"Close code {code} cannot be sent: use one of "
            f"{', '.join(map(str, sorted(_SENDABLE_CODES)))} or 3000..4999."
        )
    if len(reason.encode("utf-8")) > MAX_REASON_BYTES:
        raise ValueError(f"The close reason is longer than {MAX_REASON_BYTES} bytes of UTF-8.")


async def close_server_websockets(server_id: str, code: int, reason: str) -> str:
    """Ask every chat connection of a server to close with ``code`` and ``reason``.

    The connections may run in any process that shares the channel layer; a
    server with no connection (or no running daphne) receives nothing, and that
    is not an error.

    Args:
        server_id: whose connections to close (see ``server_group_name``).
        code: the close code (see ``check_close``).
        reason: the close reason (see ``check_close``).

    Returns:
        The name of the group the event was sent to.

    Raises:
        ValueError: an empty server id, or a code or reason that cannot be sent.
        redis.exceptions.RedisError, OSError: the channel layer's Redis failed.
    """
    check_close(code, reason)
    group = server_group_name(server_id)
    layer = get_channel_layer()
    await layer.group_send(group, {"type": SERVER_CLOSE_EVENT, "code": code, "reason": reason})
    return group
