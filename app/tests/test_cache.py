"""The cache backend (config/cache.py): Django's Redis cache with one redis-py client per pool."""

from django.conf import settings
from django.core.cache import cache


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
