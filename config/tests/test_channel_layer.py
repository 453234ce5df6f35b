"""config.channel_layer: the Redis channel layer holds at most its bound of connections per event
loop, however many operations are in flight at once (a reconnect storm), and none of them fails."""

import asyncio

import pytest
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from config.channel_layer import BoundedRedisChannelLayer

pytestmark = pytest.mark.services  # Redis: skipped on the embedded defaults, required in CI


def _burst(layer) -> tuple[int, str]:
    """60 sockets joining and leaving 7 groups at once: the connections the layer's pool opened."""

    async def burst():
        channels = [await layer.new_channel() for _ in range(60)]
        await asyncio.gather(*(layer.group_add(f"g{i % 7}", channel) for i, channel in enumerate(channels)))
        await asyncio.gather(*(layer.group_discard(f"g{i % 7}", channel) for i, channel in enumerate(channels)))
        pool = layer.connection(0).connection_pool
        opened = len(pool._available_connections) + len(pool._in_use_connections)
        await layer.flush()
        return opened, type(pool).__name__

    return asyncio.run(burst())


def test_the_settings_use_the_bounded_layer():
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "config.channel_layer.BoundedRedisChannelLayer"


def test_a_burst_of_operations_waits_for_connections_instead_of_opening_more():
    layer = BoundedRedisChannelLayer(hosts=[settings.REDIS_URL], prefix="test-bounded", max_connections=3)
    opened, pool_class = _burst(layer)
    assert pool_class == "BlockingConnectionPool"
    assert 1 <= opened <= 3


def test_the_plain_layer_would_have_opened_more():
    """What the bound prevents: the same burst on channels-redis's own pool opens more than 3."""
    opened, _ = _burst(RedisChannelLayer(hosts=[settings.REDIS_URL], prefix="test-unbounded"))
    assert opened > 3
