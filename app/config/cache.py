"""Django's Redis cache, with one redis-py client per connection pool instead of one per call.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache
operation, and redis-py's constructor fills a dict of about 170 response callbacks each
time: 0.17 ms of CPU per operation on the bench machine, more than the command's round
trip to Redis (cProfile of the room page, which makes three: session, history token,
history). A client holds no connection of its own (it takes one from the pool per command)
and is safe to share between threads, so this backend keeps the first one it builds for
each pool. Everything else is Django's ``django.core.cache.backends.redis.RedisCache``.
"""

from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    """Django's client wrapper, keeping one redis-py client per pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        """Return the redis-py client of the pool Django would pick (built once per pool).

        Args:
            key: unused, as in Django (a sharding client could pick a server by it).
            write: a write goes to the first server; reads may go to replicas.
        """
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with :class:`RedisCacheClient`."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
