"""The Redis channel layer with a bounded connection pool per event loop.

channels-redis keeps one redis-py pool per event loop (a daphne process has one) and that pool opens
a new connection whenever all of its connections are busy, and keeps every connection it ever
opened: so a process holds as many Redis connections as the most operations it ever had in flight
at once. Each reconnect storm of 200 sockets (bench/live.py) set a new high-water mark: 61 Redis
clients became 134 after eight storms, and nothing bounded it but the number of sockets. Here the
pool is a blocking one: at most CHANNEL_LAYER_MAX_CONNECTIONS per loop, and an operation beyond
them waits for a free connection (at most `pool_timeout` seconds, then the layer's usual error).
"""

import redis.asyncio as aioredis
from channels_redis.core import RedisChannelLayer


class BoundedRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args, max_connections: int = 32, pool_timeout: float = 20, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout

    def create_pool(self, index):
        host = dict(self.hosts[index])
        if "address" not in host:  # a Sentinel or keyword-only host: channels-redis's own pool
            return super().create_pool(index)
        address = host.pop("address")
        return aioredis.BlockingConnectionPool.from_url(
            address, max_connections=self.max_connections, timeout=self.pool_timeout, **host
        )
