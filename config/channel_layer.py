"""The Redis channel layer with a bounded connection pool per event loop, and receives that a leaving
consumer cannot make lose another consumer's message.

Bounded pool. channels-redis keeps one redis-py pool per event loop (a daphne process has one) and
that pool opens a new connection whenever all of its connections are busy, and keeps every connection
it ever opened: so a process holds as many Redis connections as the most operations it ever had in
flight at once. Each reconnect storm of 200 sockets (bench/live.py) set a new high-water mark: 61
Redis clients became 134 after eight storms, and nothing bounded it but the number of sockets. Here
the pool is a blocking one: at most CHANNEL_LAYER_MAX_CONNECTIONS per loop, and an operation beyond
them waits for a free connection (at most `pool_timeout` seconds, then the layer's usual error).

Receives. Every consumer of a process receives through one Redis key (the process's own), and one of
their receive() calls at a time pops from it (BZPOPMIN) for all of them, then hands each message to
the consumers it is for. channels-redis runs that pop inside the receive() of whichever consumer got
there first, so when that consumer leaves (a page navigating away: its receive is cancelled) the pop
is cancelled with it: a message Redis had popped for it, or pops before it sees the client go, is
dropped, though it was for the process's other consumers too (a desk signal that never reached the
other agents' pages). Here the pop runs as a task of its own that a cancelled receive leaves running;
its message is handed out when it completes, and a wake-up message (addressed to nobody) makes it
complete at once rather than after the pop's timeout.
"""

import asyncio
import logging
import time

import redis.asyncio as aioredis
from channels_redis.core import ChannelLock, RedisChannelLayer

logger = logging.getLogger(__name__)


class _ChannelLock(ChannelLock):
    """channels-redis's per-channel lock, whose count of waiters an acquire() cancelled while it
    waited left one too high: the lock then outlived its event loop, and the next loop to wait on it
    failed with "bound to a different event loop" (tests run a loop each)."""

    async def acquire(self, channel):
        try:
            return await super().acquire(channel)
        except BaseException:  # not acquired (asyncio's Lock gives it up on cancellation): not waiting
            self.wait_counts[channel] -= 1
            if self.wait_counts[channel] < 1:
                del self.locks[channel]
                del self.wait_counts[channel]
            raise


class BoundedRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args, max_connections: int = 32, pool_timeout: float = 20, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout
        self.receive_clean_locks = _ChannelLock()
        self._orphaned_pops: set[asyncio.Task] = set()  # referenced until they complete

    def create_pool(self, index):
        host = dict(self.hosts[index])
        if "address" not in host:  # a Sentinel or keyword-only host: channels-redis's own pool
            return super().create_pool(index)
        address = host.pop("address")
        return aioredis.BlockingConnectionPool.from_url(
            address, max_connections=self.max_connections, timeout=self.pool_timeout, **host
        )

    async def receive_single(self, channel):
        if not channel.endswith("!"):  # a general channel: its one receiver is the one cancelled
            return await super().receive_single(channel)
        pop = asyncio.ensure_future(super().receive_single(channel))
        try:
            return await asyncio.shield(pop)
        except asyncio.CancelledError:
            if not pop.done():
                self._orphaned_pops.add(pop)
                pop.add_done_callback(self._hand_out)
                try:
                    await self._wake(channel)
                except Exception:  # the pop still returns, after brpop_timeout; the receive stays cancelled
                    logger.warning("channel layer: a left pop was not woken", exc_info=True)
            elif not pop.cancelled():
                self._hand_out(pop)
            raise

    def _hand_out(self, pop: asyncio.Task) -> None:
        """Give the message an orphaned pop took to the consumers it is for (as receive() would)."""
        self._orphaned_pops.discard(pop)
        if pop.cancelled() or pop.exception() is not None:
            return
        message_channel, message = pop.result()
        for name in message_channel if isinstance(message_channel, list) else [message_channel]:
            self.receive_buffer[name].put_nowait(message)

    async def _wake(self, channel: str) -> None:
        """A message for no consumer on the process's key: the pop in flight returns with it (or
        with a real one, and the next pop takes this one), instead of blocking up to brpop_timeout."""
        key = self.prefix + channel
        connection = self.connection(self.consistent_hash(channel))
        await connection.zadd(key, {self.serialize({"__asgi_channel__": []}): time.time()})
        await connection.expire(key, int(self.expiry))
