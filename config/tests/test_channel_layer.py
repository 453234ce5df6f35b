"""config.channel_layer: the Redis channel layer holds at most its bound of connections per event
loop, however many operations are in flight at once (a reconnect storm), and none of them fails."""

import asyncio
import time

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


# --- a consumer that leaves while its receive pops for the whole process ---------------------------


def _popped_then_held(layer):
    """Make `layer`'s pops stop once Redis has handed them a message, until `release` is set: the
    moment at which a leaving consumer's receive used to be cancelled with the message in hand (the
    reply on its way; not yet in channels-redis's backup of messages taken)."""
    popped, release = asyncio.Event(), asyncio.Event()
    connection = layer.connection(0)  # this event loop's client, which the layer's pops use
    bzpopmin = connection.bzpopmin

    async def held(*args, **kwargs):
        result = await bzpopmin(*args, **kwargs)
        if result is not None:
            popped.set()
            await release.wait()
        return result

    connection.bzpopmin = held
    return popped, release


def _leaving_receiver(layer_class) -> list[dict]:
    """Two consumers of one process in a group; the one whose receive is popping for both leaves
    (its receive is cancelled) just as Redis hands it a group message: what the other one gets."""
    layer = layer_class(hosts=[settings.REDIS_URL], prefix=f"test-leaving-{layer_class.__name__}")

    async def scenario():
        leaving, staying = await layer.new_channel(), await layer.new_channel()
        for channel in (leaving, staying):
            await layer.group_add("queue", channel)
        popped, release = _popped_then_held(layer)
        leaving_receive = asyncio.ensure_future(layer.receive(leaving))
        await asyncio.sleep(0.05)  # it pops, for both
        staying_receive = asyncio.ensure_future(layer.receive(staying))
        await layer.group_send("queue", {"type": "queue.changed"})
        await asyncio.wait_for(popped.wait(), 2)
        leaving_receive.cancel()
        await asyncio.sleep(0)
        release.set()
        try:
            got = [await asyncio.wait_for(staying_receive, 2)]
        except TimeoutError:
            got = []
        await layer.flush()
        return got

    return asyncio.run(scenario())


def test_a_consumer_leaving_while_its_receive_pops_loses_no_message_of_the_others():
    assert _leaving_receiver(BoundedRedisChannelLayer) == [{"type": "queue.changed"}]


def test_the_plain_layer_would_have_lost_it():
    """What the layer prevents: channels-redis drops the message with the cancelled receive."""
    assert _leaving_receiver(RedisChannelLayer) == []


def test_after_a_consumer_left_the_others_receive_at_once_and_only_what_was_sent():
    """A receive cancelled with no message in flight leaves its pop running: the wake-up it sends
    makes that pop return, so the next message is not held up by the pop's timeout (5 s), and the
    wake-up itself reaches nobody."""
    layer = BoundedRedisChannelLayer(hosts=[settings.REDIS_URL], prefix="test-left")

    async def scenario():
        leaving, staying = await layer.new_channel(), await layer.new_channel()
        leaving_receive = asyncio.ensure_future(layer.receive(leaving))
        await asyncio.sleep(0.05)
        staying_receive = asyncio.ensure_future(layer.receive(staying))
        await asyncio.sleep(0.05)
        leaving_receive.cancel()
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await layer.send(staying, {"type": "hello"})
        got = await asyncio.wait_for(staying_receive, 2)
        waited = time.monotonic() - started
        try:
            extra = await asyncio.wait_for(layer.receive(staying), 0.5)
        except TimeoutError:
            extra = None
        await layer.flush()
        return got, waited, extra

    got, waited, extra = asyncio.run(scenario())
    assert got == {"type": "hello"}
    assert waited < 1
    assert extra is None


def test_a_wait_for_a_channel_lock_that_is_cancelled_leaves_no_lock_behind():
    """Else the lock outlives its event loop, and the next loop that waits on it fails ("bound to
    a different event loop"): a cancelled receive in one test broke the next test's receives."""
    layer = BoundedRedisChannelLayer(hosts=[settings.REDIS_URL], prefix="test-locks")
    locks = layer.receive_clean_locks

    async def cancelled_wait():
        await locks.acquire("specific.x!")
        waiter = asyncio.ensure_future(locks.acquire("specific.x!"))
        await asyncio.sleep(0.01)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        locks.release("specific.x!")

    asyncio.run(cancelled_wait())
    assert "specific.x!" not in locks.locks

    async def contended():  # another event loop
        await locks.acquire("specific.x!")
        waiter = asyncio.ensure_future(locks.acquire("specific.x!"))
        await asyncio.sleep(0.01)
        locks.release("specific.x!")
        await waiter
        locks.release("specific.x!")

    asyncio.run(contended())
