"""Probes for load balancers: /healthz (the process answers) and /readyz (its dependencies do).

/readyz also counts the events detection set aside (`dead_letters`), for monitoring to alert on;
they do not make the instance unready (a load balancer pulling it would not help)."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.decorators import mfa_not_required

logger = logging.getLogger(__name__)


@never_cache
@require_GET
@login_not_required
@mfa_not_required
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_channel_layer() -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)("readyz.")
    async_to_sync(layer.send)(channel, {"type": "readyz.ping"})
    message = async_to_sync(layer.receive)(channel)
    if message.get("type") != "readyz.ping":
        raise RuntimeError("channel layer returned an unexpected message")


@never_cache
@require_GET
@login_not_required
@mfa_not_required
def readyz(request):
    checks = {"database": _check_database}
    if settings.REDIS_URL:
        checks["channel_layer"] = _check_channel_layer
    results, ready = {}, True
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception:  # a probe reports every failure as "not ready"
            logger.exception("readiness check failed", extra={"check": name})
            results[name] = "error"
            ready = False
    body = {"status": "ok" if ready else "error", "checks": results}
    if results["database"] == "ok":
        body["dead_letters"] = _dead_letters()
    return JsonResponse(body, status=200 if ready else 503)


def _dead_letters() -> int | None:
    from alerts.dead_letters import dead_letters_open_count

    try:
        return dead_letters_open_count()
    except Exception:  # a count is not a readiness check
        logger.exception("could not count dead letters")
        return None
