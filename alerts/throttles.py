"""The event API's rate limit, per tenant, counted in events."""

import time

from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

DEFAULT_EVENTS_PER_SECOND = 10_000


def _events_in(data) -> int:
    if isinstance(data, dict) and isinstance(data.get("events"), list):
        return len(data["events"])
    return 1


class TenantEventRateThrottle(BaseThrottle):
    """A one-second fixed window per tenant, counted in events, shared through the cache (Redis
    with several processes). Runs after authentication (`request.auth` is the tenant's ApiKey) and
    parses the body to count its events: a batch that then fails validation has used its share."""

    def allow_request(self, request, view) -> bool:
        tenant = request.auth.tenant
        ingest_settings = getattr(tenant, "ingest_settings", None)
        limit = ingest_settings.rate_limit_per_second if ingest_settings else DEFAULT_EVENTS_PER_SECOND
        count = _events_in(request.data)
        key = f"ingest-rate:{tenant.pk}:{int(time.time())}"
        cache.add(key, 0, timeout=5)
        try:
            used = cache.incr(key, count)
        except ValueError:  # expired between add and incr
            cache.set(key, count, timeout=5)
            used = count
        return used <= limit

    def wait(self) -> float:
        return 1.0  # the window is one second
