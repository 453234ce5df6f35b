"""Provider rate limits held globally: a token bucket per provider and sender, shared by every
worker (Celery's `rate_limit` is per worker). In Redis (one Lua script, atomic, on the server's
clock) when REDIS_URL is set; in-process on the embedded defaults (one process).

A caller asks for n tokens and gets how many it may send now and how long until the next one:
rows over the limit are rescheduled by the caller, never dropped.
"""

import threading
import time

from django.conf import settings

# KEYS[1]: the bucket. ARGV: rate per second, burst, tokens wanted. The bucket is a hash (tokens,
# at in microseconds) that expires once it would be full again. Returns {granted, wait in ms}.
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate / 1000000)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
local wait = 0
if granted < wanted then wait = math.ceil((1 - (tokens - math.floor(tokens))) / rate * 1000) end
return {granted, wait}
"""


class RedisBuckets:
    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(_LUA)

    def take(self, key: str, wanted: int, rate: float, burst: float) -> tuple[int, float]:
        granted, wait_ms = self.script(keys=[f"alertdesk:ratelimit:{key}"], args=[rate, burst, wanted])
        return int(granted), int(wait_ms) / 1000

    def reset(self, key: str) -> None:
        self.client.delete(f"alertdesk:ratelimit:{key}")


class MemoryBuckets:
    def __init__(self):
        self.lock = threading.Lock()
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, wanted: int, rate: float, burst: float) -> tuple[int, float]:
        with self.lock:
            now = time.monotonic()
            tokens, at = self.buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate)
            granted = min(wanted, int(tokens))
            tokens -= granted
            self.buckets[key] = (tokens, now)
            wait = 0.0 if granted == wanted else (1 - (tokens - int(tokens))) / rate
            return granted, wait

    def reset(self, key: str) -> None:
        with self.lock:
            self.buckets.pop(key, None)


_buckets: RedisBuckets | MemoryBuckets | None = None


def buckets() -> RedisBuckets | MemoryBuckets:
    global _buckets
    if _buckets is None:
        _buckets = RedisBuckets(settings.REDIS_URL) if settings.REDIS_URL else MemoryBuckets()
    return _buckets


def rate_take(*, key: str, wanted: int, rate: float, burst: float) -> tuple[int, float]:
    """(tokens granted now, seconds until the next one) of `key`'s bucket, `rate` tokens a second
    up to `burst`."""
    return buckets().take(key, wanted, rate, burst)
