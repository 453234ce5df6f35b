"""The account-event ingestion API (contracts/events.md): POST /api/v1/events/."""

import hashlib
import hmac
import json
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from accounts.decorators import mfa_not_required
from alerts.keys import api_key_authenticate
from alerts.services import events_ingest
from alerts.validation import validate_body


def _error(status: int, message: str, **headers) -> JsonResponse:
    response = JsonResponse({"errors": [{"index": 0, "field": "", "message": message}]}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _unauthorized(message: str) -> JsonResponse:
    return _error(401, message, WWW_Authenticate='Bearer realm="alertdesk-events"')


def _signature_ok(request, body: bytes, secret: str) -> str | None:
    """None when the signature is good and fresh, else why not."""
    stamp = request.headers.get("X-AlertDesk-Timestamp", "")
    signature = request.headers.get("X-AlertDesk-Signature", "")
    if not stamp or not signature:
        return "missing X-AlertDesk-Timestamp or X-AlertDesk-Signature"
    if not stamp.isdigit() or len(stamp) > 12:
        return "X-AlertDesk-Timestamp must be unix seconds"
    if abs(time.time() - int(stamp)) > settings.INGEST_SIGNATURE_TOLERANCE_SECONDS:
        return "stale timestamp: requests older than 5 minutes are refused"
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(f"sha256={expected}", signature):
        return "bad signature"
    return None


def _over_rate_limit(tenant_id: int, count: int, limit: int) -> bool:
    """A one-second fixed window per tenant, counted in events (shared through the cache: Redis
    with several processes)."""
    key = f"ingest-rate:{tenant_id}:{int(time.time())}"
    cache.add(key, 0, timeout=5)
    try:
        used = cache.incr(key, count)
    except ValueError:  # expired between add and incr
        cache.set(key, count, timeout=5)
        used = count
    return used > limit


@method_decorator([csrf_exempt, login_not_required, mfa_not_required], name="dispatch")
class EventIngestApi(View):
    """Client systems authenticate with their tenant's key (and sign the body); no staff session."""

    http_method_names = ["post"]

    def post(self, request):
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > settings.INGEST_MAX_BODY_BYTES:
            return _error(413, "the body is over 1 MiB")
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return _unauthorized("missing Authorization: Bearer <api key>")
        key = api_key_authenticate(auth[len("Bearer ") :].strip())
        if key is None:
            return _unauthorized("unknown, expired or revoked API key")
        tenant = key.tenant
        if not tenant.is_active:
            return _error(403, "this tenant is deactivated")
        body = request.body
        if len(body) > settings.INGEST_MAX_BODY_BYTES:
            return _error(413, "the body is over 1 MiB")
        ingest_settings = getattr(tenant, "ingest_settings", None)
        if ingest_settings is None or ingest_settings.signature_required:
            problem = _signature_ok(request, body, key.signing_secret)
            if problem:
                return _unauthorized(problem)
        if request.content_type != "application/json":
            return _error(415, "Content-Type must be application/json")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return JsonResponse(
                {"errors": [{"index": 0, "field": "", "message": "the body is not valid JSON"}]}, status=400
            )
        result = validate_body(payload, max_batch=settings.INGEST_MAX_BATCH)
        if result.errors:
            return JsonResponse({"errors": result.errors}, status=400)
        limit = ingest_settings.rate_limit_per_second if ingest_settings else 10_000
        if _over_rate_limit(tenant.pk, len(result.events), limit):
            return _error(429, "over this tenant's rate limit", Retry_After="1")
        accepted, duplicates, _ = events_ingest(tenant=tenant, events=result.events, key_prefix=key.prefix)
        return JsonResponse({"accepted": accepted, "duplicates": duplicates}, status=202)
