"""Django's Redis cache, with connection pools shared by the whole process, and one redis-py
client per pool instead of one per call.

Django makes a cache object per thread and per asyncio context (``django.core.cache.caches``
is an asgiref ``Local``), and its Redis backend gives each object connection pools of its
own. Under an ASGI server every WebSocket runs in a context of its own, so every handshake
that read its session from the cache opened one more connection to Redis and never closed
it: ``make bench``'s 10,000 handshakes left 4,618 idle connections behind, until the
instances ran out of open files and refused everyone. Here the pools belong to the process,
keyed by server URL and options, so all cache objects of a process share them (a
redis-py pool is safe to share between threads and tasks; it resets itself in a forked
child).

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache
operation, and redis-py's constructor fills a dict of about 170 response callbacks each
time: 0.17 ms of CPU per operation on the bench machine, more than the command's round
trip to Redis (cProfile of the room page, which makes three: session, history token,
history). A client holds no connection of its own (it takes one from the pool per command)
and is safe to share between threads, so this backend keeps the first one it builds for
each pool. Everything else is Django's ``django.core.cache.backends.redis.RedisCache``.
"""

import threading
from typing import Any

from django.core.cache.backends import redis as django_redis

# The process's pools and their clients, by (server URL, pool options).
_POOLS: dict[tuple[str, str], tuple[Any, Any]] = {}
_POOLS_LOCK = threading.Lock()


class RedisCacheClient(django_redis.RedisCacheClient):
    """Django's client wrapper, with the process's pools and one redis-py client per pool."""

    def _pool_and_client(self, write: bool) -> tuple[Any, Any]:
        index = self._get_connection_pool_index(write)
        key = (self._servers[index], repr(sorted(self._pool_options.items())))
        found = _POOLS.get(key)
        if found is None:
            with _POOLS_LOCK:
                found = _POOLS.get(key)
                if found is None:
                    pool = self._pool_class.from_url(self._servers[index], **self._pool_options)
                    found = _POOLS[key] = (pool, self._client(connection_pool=pool))
        return found

    def _get_connection_pool(self, write: bool) -> Any:
        """Return the process's pool of the server Django would pick (made once per process).

        Args:
            write: a write goes to the first server; reads may go to replicas.
        """
        return self._pool_and_client(write)[0]

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        """Return the redis-py client of the pool Django would pick (built once per pool).

        Args:
            key: unused, as in Django (a sharding client could pick a server by it).
            write: a write goes to the first server; reads may go to replicas.
        """
        return self._pool_and_client(write)[1]


class RedisCache(django_redis.RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with :class:`RedisCacheClient`."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
