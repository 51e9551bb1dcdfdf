"""Pass messages through both channels-redis layers as the app's Redis user.

For each layer (``pubsub``: RedisPubSubChannelLayer, ``core``: RedisChannelLayer)
two layer instances stand for two server processes, each with its own channel.
Both channels join a group; the first instance sends to the group and both
channels must receive the message; then it sends straight to the second channel.
This runs the Redis commands (and, for ``core``, the Lua scripts) the app runs.

Environment: REDIS_USER, REDIS_PASSWORD, REDIS_HOST (default 127.0.0.1),
REDIS_PORT (default 6379), REDIS_TLS_CA (optional: rediss:// verified against
this CA file, passed in the URL as the app does). The password never appears in
the output.

Exit status 0 when every message arrived; otherwise the exception (e.g. redis'
NoPermissionError naming the refused command) ends the script with status 1.
"""

import asyncio
import os
import uuid
from urllib.parse import quote

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

# Seconds to wait for each message.
RECEIVE_TIMEOUT = 10.0

LAYERS = {"pubsub": RedisPubSubChannelLayer, "core": RedisChannelLayer}


def redis_url() -> str:
    """Return the redis:// or rediss:// URL with the user and password percent-encoded."""
    user = quote(os.environ["REDIS_USER"], safe="")
    password = quote(os.environ["REDIS_PASSWORD"], safe="")
    host = os.environ.get("REDIS_HOST", "127.0.0.1")
    port = os.environ.get("REDIS_PORT", "6379")
    cafile = os.environ.get("REDIS_TLS_CA", "")
    if cafile:
        return f"rediss://{user}:{password}@{host}:{port}/0?ssl_ca_certs={quote(cafile)}"
    return f"redis://{user}:{password}@{host}:{port}/0"


class WrongMessageError(RuntimeError):
    """A channel received something other than the message sent."""


async def expect(layer, channel: str, message: dict) -> None:
    """Receive the next message on ``channel`` and check that it is ``message``.

    Raises:
        TimeoutError: nothing arrived within RECEIVE_TIMEOUT seconds.
        WrongMessageError: another message arrived.
    """
    received = await asyncio.wait_for(layer.receive(channel), RECEIVE_TIMEOUT)
    if received != message:
        raise WrongMessageError(f"{channel}: expected {message}, got {received}")


async def exercise(name: str) -> None:
    """Send a group message and a direct message through layer ``name``.

    Raises:
        TimeoutError: a message did not arrive.
        WrongMessageError: another message arrived.
        redis.exceptions.RedisError: Redis refused a command.
    """
    url = redis_url()
    first, second = LAYERS[name](hosts=[url]), LAYERS[name](hosts=[url])
    group = f"verify-{uuid.uuid4().hex}"
    try:
        channel_a = await first.new_channel()
        channel_b = await second.new_channel()
        await first.group_add(group, channel_a)
        await second.group_add(group, channel_b)

        sent = {"type": "chat.message", "text": f"group {uuid.uuid4().hex}"}
        await first.group_send(group, sent)
        await expect(first, channel_a, sent)
        await expect(second, channel_b, sent)

        direct = {"type": "chat.message", "text": f"direct {uuid.uuid4().hex}"}
        await first.send(channel_b, direct)
        await expect(second, channel_b, direct)

        await first.group_discard(group, channel_a)
        await second.group_discard(group, channel_b)
    finally:
        for layer in (first, second):
            if name == "core":
                await layer.close_pools()
            else:
                await layer.flush()
    print(
        f"{name} ({url.split(':', 1)[0]}): group message reached both channels,"
        " direct message reached its channel"
    )


async def main() -> None:
    """Exercise every layer in turn."""
    for name in LAYERS:
        await exercise(name)


if __name__ == "__main__":
    asyncio.run(main())
