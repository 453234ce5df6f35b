"""config.channel_layer: the Redis channel layer holds at most its bound of connections per event
loop, however many operations are in flight at once (a reconnect storm), and none of them fails."""

import asyncio

import pytest
from django.conf import settings

from config.channel_layer import BoundedRedisChannelLayer

pytestmark = pytest.mark.services  # Redis: skipped on the embedded defaults, required in CI


def test_the_settings_use_the_bounded_layer():
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "config.channel_layer.BoundedRedisChannelLayer"


def test_a_burst_of_operations_waits_for_connections_instead_of_opening_more():
    async def burst():
        layer = BoundedRedisChannelLayer(hosts=[settings.REDIS_URL], prefix="test-bounded", max_connections=3)
        channels = [await layer.new_channel() for _ in range(60)]
        await asyncio.gather(*(layer.group_add(f"g{i % 7}", channel) for i, channel in enumerate(channels)))
        await asyncio.gather(*(layer.group_discard(f"g{i % 7}", channel) for i, channel in enumerate(channels)))
        pool = layer.connection(0).connection_pool
        opened = len(pool._available_connections) + len(pool._in_use_connections)
        await layer.flush()
        return opened, type(pool).__name__

    opened, pool_class = asyncio.run(burst())
    assert pool_class == "BlockingConnectionPool"
    assert 1 <= opened <= 3


def test_the_plain_layer_would_have_opened_more():
    """What the bound prevents: the same burst on channels-redis's own pool opens more than 3."""
    from channels_redis.core import RedisChannelLayer

    async def burst():
        layer = RedisChannelLayer(hosts=[settings.REDIS_URL], prefix="test-unbounded")
        channels = [await layer.new_channel() for _ in range(60)]
        await asyncio.gather(*(layer.group_add(f"g{i % 7}", channel) for i, channel in enumerate(channels)))
        await asyncio.gather(*(layer.group_discard(f"g{i % 7}", channel) for i, channel in enumerate(channels)))
        pool = layer.connection(0).connection_pool
        opened = len(pool._available_connections) + len(pool._in_use_connections)
        await layer.flush()
        return opened

    assert asyncio.run(burst()) > 3
