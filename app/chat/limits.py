"""Per-user WebSocket limits shared by every daphne process: socket count and frame budget.

Both live in the channel layer's Redis (``REDIS_URL``), so they hold across the
daphne instances of a host and across app hosts:

- Open sockets of a user: a sorted set ``chat:ws:sockets:<user id>`` whose
  members are connection ids (channel names) scored with the moment they expire,
  in Redis' clock (ms). A connection adds itself at connect (refused when the
  user already has ``CHAT_WS_MAX_PER_USER`` live entries), removes itself at
  disconnect, and its process renews it every ``SOCKET_REFRESH_SECONDS``; the
  entry of a crashed process expires after ``SOCKET_TTL_SECONDS``, so a crash
  cannot lock a user out for longer than that.
- Frame budget of a user: a token bucket in a hash ``chat:ws:rate:<user id>``
  (``tokens``, ``ts``), refilled and taken from in one Lua script with Redis'
  clock, so every socket of the user draws from the same bucket.

When Redis fails, both fail open (the connection is allowed; frames are held to
the per-connection bucket alone) and a warning is logged: an outage of the
channel layer must not also lock everyone out.

The app's Redis user needs, on keys ``~chat:*``: ``EVAL`` and, inside the
scripts, ``TIME ZREMRANGEBYSCORE ZCARD ZADD PEXPIRE HMGET HSET``, plus ``ZREM``
(see app/README.md, "Redis").
"""

import asyncio
import logging
import weakref
from collections.abc import Iterable

import redis.asyncio as aioredis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

logger = logging.getLogger(__name__)

# Seconds a socket's entry lives without renewal, and how often its process renews it.
SOCKET_TTL_SECONDS = 30
SOCKET_REFRESH_SECONDS = 10

# Seconds to wait for Redis to connect and to answer one command.
REDIS_TIMEOUT = 1.0

_KEY_PREFIX = "chat:ws:"

# Add a connection unless the user already has ARGV[2] live ones.
# KEYS[1]: the user's sorted set; ARGV: connection id, limit, ttl (ms). Returns 1 or 0.
_REGISTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# Renew connections (adding back any that Redis lost, e.g. in a restart).
# KEYS: sorted sets; ARGV[1]: ttl (ms), then one connection id per key.
_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
"""

# Take one token of a bucket of ARGV[1] tokens refilled at ARGV[2] per second.
# KEYS[1]: the user's hash. Returns 1 (taken) or 0 (empty).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
  'ts', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return taken
"""

# One client per event loop (redis.asyncio connections belong to the loop that opened them).
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, aioredis.Redis]]" = (
    weakref.WeakKeyDictionary()
)


def sockets_key(user_id: object) -> str:
    """Return the Redis key of the sorted set of a user's open sockets."""
    return f"{_KEY_PREFIX}sockets:{user_id}"


def rate_key(user_id: object) -> str:
    """Return the Redis key of a user's frame budget."""
    return f"{_KEY_PREFIX}rate:{user_id}"


def redis_client() -> aioredis.Redis | None:
    """Return this event loop's client of ``settings.REDIS_URL``; None without a REDIS_URL.

    Connecting and each command wait at most REDIS_TIMEOUT seconds; a command
    that meets a dropped connection (a Redis restart) is retried once at once on
    a new one.
    """
    url = settings.REDIS_URL
    if not url:
        return None
    loop = asyncio.get_running_loop()
    cached = _clients.get(loop)
    if cached is not None and cached[0] == url:
        return cached[1]
    client = aioredis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    _clients[loop] = (url, client)
    return client


async def register_socket(user_id: object, connection_id: str, limit: int) -> bool:
    """Count a new socket of a user, unless the user already has ``limit`` open.

    Args:
        user_id: the user's primary key.
        connection_id: unique id of the connection (its channel name).
        limit: most sockets the user may hold (``CHAT_WS_MAX_PER_USER``).

    Returns:
        True when the socket may stay (also when Redis failed: fail open, logged);
        False when the user is at the limit.
    """
    client = redis_client()
    if client is None:
        return True
    try:
        added = await client.eval(
            _REGISTER, 1, sockets_key(user_id), connection_id, limit, SOCKET_TTL_SECONDS * 1000
        )
    except (RedisError, OSError) as error:
        logger.warning("Socket limit not checked (Redis failed: %s); allowing", error)
        return True
    return bool(added)


async def unregister_socket(user_id: object, connection_id: str) -> None:
    """Forget a closed socket of a user; a Redis failure is logged (the entry expires)."""
    client = redis_client()
    if client is None:
        return
    try:
        await client.zrem(sockets_key(user_id), connection_id)
    except (RedisError, OSError) as error:
        logger.warning("Could not forget a closed socket (Redis failed: %s)", error)


async def refresh_sockets(sockets: Iterable[tuple[object, str]]) -> None:
    """Renew the entries of this process's open sockets for another SOCKET_TTL_SECONDS.

    Args:
        sockets: ``(user id, connection id)`` pairs.

    Raises:
        redis.exceptions.RedisError, OSError: Redis failed (the caller logs and retries later).
    """
    client = redis_client()
    pairs = list(sockets)
    if client is None or not pairs:
        return
    keys = [sockets_key(user_id) for user_id, _ in pairs]
    members = [connection_id for _, connection_id in pairs]
    await client.eval(_REFRESH, len(keys), *keys, SOCKET_TTL_SECONDS * 1000, *members)


async def take_frame_token(user_id: object, burst: int, per_second: float) -> bool | None:
    """Take one token of the frame budget all sockets of a user share.

    Args:
        user_id: the user's primary key.
        burst: tokens the bucket holds (``CHAT_WS_RATE_BURST``).
        per_second: tokens added per second (``CHAT_WS_RATE_PER_SECOND``).

    Returns:
        True (taken) or False (over the limit); None when Redis is not configured
        or failed, and the caller falls back on its per-connection bucket.
    """
    client = redis_client()
    if client is None:
        return None
    try:
        return bool(await client.eval(_TAKE, 1, rate_key(user_id), burst, per_second))
    except (RedisError, OSError) as error:
        logger.warning("Shared frame budget not checked (Redis failed: %s)", error)
        return None
