"""The cache backend (config/cache.py): Django's Redis cache with the process's pools."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

from tests.helpers import join

# WebSockets opened (and closed) twice over in the connection test: below the per-user limit.
HANDSHAKES = 8


def test_settings_use_the_backend():
    assert settings.CACHES["default"]["BACKEND"] == "config.cache.RedisCache"


def test_operations_share_one_client_and_still_work():
    client = cache._cache.get_client(write=True)
    cache.set("cache-test", {"a": 1}, 30)
    assert cache.get("cache-test") == {"a": 1}
    assert cache._cache.get_client("cache-test") is client
    assert cache._cache.get_client(write=False) is client  # One server: one pool.


def test_a_restarted_redis_is_used_again(redis_server):
    cache.set("cache-test", 1, 30)
    redis_server.stop()
    redis_server.start()
    for _ in range(2):  # The pool may meet its dead connection first.
        try:
            cache.set("cache-test", 2, 30)
            break
        except Exception:  # noqa: S112
            continue
    assert cache.get("cache-test") == 2


def open_connections_to(port: int) -> int:
    """Count this process's TCP connections to 127.0.0.1:``port`` (from /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if state == "01" and int(remote.split(":")[1], 16) == port and inode in inodes:
            count += 1
    return count


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_websocket_handshakes_share_the_process_cache_connections(alice_cookie, redis_server):
    """Each WebSocket runs in an asyncio context of its own, with its own cache object.

    Its handshake reads the session through the cache; the connections to Redis that
    takes must come from the process's pools, not one more per WebSocket (make bench's
    10,000 handshakes left thousands open, until daphne ran out of open files).
    """
    before = open_connections_to(redis_server.port)
    clients = [await join("lobby", alice_cookie) for _ in range(HANDSHAKES)]
    try:
        for client in clients:
            await client.disconnect()
        clients = [await join("kitchen", alice_cookie) for _ in range(HANDSHAKES)]
        grown = open_connections_to(redis_server.port) - before
        assert grown < HANDSHAKES, f"{grown} more connections to Redis after the handshakes"
    finally:
        for client in clients:
            await client.disconnect()
