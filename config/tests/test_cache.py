"""config.cache: every cache object of a process shares one Redis connection pool per server (under
ASGI each request gets its own cache object, and a pool each leaked their connections)."""

import threading

from config.cache import SharedPoolRedisCache

URL = "redis://127.0.0.1:6379/9"


def _pool(cache):
    return cache._cache._get_connection_pool(True)  # lazy: no connection is made here


def test_cache_objects_share_one_pool_per_server_across_threads():
    pools = [_pool(SharedPoolRedisCache(URL, {}))]
    thread = threading.Thread(target=lambda: pools.append(_pool(SharedPoolRedisCache(URL, {}))))
    thread.start()
    thread.join()
    assert pools[0] is pools[1]


def test_another_server_or_other_options_get_their_own_pool():
    pool = _pool(SharedPoolRedisCache(URL, {}))
    assert _pool(SharedPoolRedisCache("redis://127.0.0.1:6379/8", {})) is not pool
    assert _pool(SharedPoolRedisCache(URL, {"OPTIONS": {"socket_timeout": 5}})) is not pool
