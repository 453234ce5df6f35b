"""Django's Redis cache with one connection pool per process and server.

Django keeps a cache object per execution context, and under ASGI every request runs in a context of
its own, so each request built a cache object with a connection pool of its own and left its Redis
connection open until the garbage collector found it (ten held by one daphne process after 60
ingestion requests; over a hundred under bench/live.py's load). A redis-py pool is thread-safe, so
the cache objects share one instead; a forked process (a Celery worker) makes its own.
"""

import os
import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_pools: dict[tuple[int, str, tuple], object] = {}
_lock = threading.Lock()


class SharedPoolRedisCacheClient(RedisCacheClient):
    def _get_connection_pool(self, write):
        server = self._servers[self._get_connection_pool_index(write)]
        key = (os.getpid(), server, tuple(sorted((k, repr(v)) for k, v in self._pool_options.items())))
        pool = _pools.get(key)
        if pool is None:
            with _lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = _pools[key] = self._pool_class.from_url(server, **self._pool_options)
        return pool


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
