"""The account-event ingestion API (contracts/events.md): POST /api/v1/events/."""

import hashlib
import hmac
import json
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.decorators import mfa_not_required
from alerts.keys import api_key_authenticate
from alerts.selectors import ALERT_CHANGE_PERM, alert_get_for, alert_list_for
from alerts.serializers import (
    AlertDetailSerializer,
    AlertFilterSerializer,
    AlertSerializer,
    TransitionResultSerializer,
    TransitionSerializer,
)
from alerts.services import AlertTransitionError, alert_acknowledge, alert_dismiss, alert_resolve, events_ingest
from alerts.validation import EVENT_TYPES, validate_body
from audit.decorators import audit_shown, shows_data


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


_ERRORS = {
    "type": "object",
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer", "description": "position in the batch (0 for a single event)"},
                    "field": {"type": "string", "description": "dotted path, e.g. account.phone"},
                    "message": {"type": "string"},
                },
            },
        }
    },
}
_EVENT = {
    "type": "object",
    "required": ["id", "type", "occurred_at", "account"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 128, "description": "your id: the idempotency key"},
        "type": {"type": "string", "enum": sorted(EVENT_TYPES)},
        "occurred_at": {"type": "string", "format": "date-time", "description": "RFC 3339 with an offset"},
        "account": {
            "type": "object",
            "required": ["external_id"],
            "properties": {
                "external_id": {"type": "string", "maxLength": 128},
                "email": {"type": "string", "format": "email"},
                "phone": {"type": "string", "pattern": "^\\+[1-9][0-9]{1,14}$"},
                "display_name": {"type": "string", "maxLength": 200},
                "locale": {"type": "string", "description": "BCP 47"},
                "channels": {
                    "type": "object",
                    "properties": {c: {"type": "boolean"} for c in ("email", "sms", "push", "voice")},
                },
            },
        },
        "context": {
            "type": "object",
            "description": "ip, user_agent, device_id, session_id, geo, and type-specific fields",
        },
    },
}


_INGEST_SCHEMA = extend_schema(
    operation_id="events_ingest",
    summary="Send account events (one, or a batch of up to 1,000)",
    description=(
        "Authenticate with `Authorization: Bearer <tenant API key>` and sign with `X-AlertDesk-Timestamp` and "
        '`X-AlertDesk-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`. See contracts/events.md.'
    ),
    request={
        "application/json": {
            "oneOf": [
                _EVENT,
                {
                    "type": "object",
                    "properties": {"events": {"type": "array", "items": _EVENT, "minItems": 1, "maxItems": 1000}},
                },
            ]
        }
    },
    responses={
        202: OpenApiResponse(
            {"type": "object", "properties": {"accepted": {"type": "integer"}, "duplicates": {"type": "integer"}}},
            description="Stored durably; detection follows.",
        ),
        400: OpenApiResponse(_ERRORS, description="Validation failed; nothing was stored."),
        401: OpenApiResponse(_ERRORS, description="Missing or unknown key; bad or stale signature."),
        403: OpenApiResponse(_ERRORS, description="The tenant is deactivated."),
        413: OpenApiResponse(_ERRORS, description="Body over 1 MiB."),
        415: OpenApiResponse(_ERRORS, description="Not JSON."),
        429: OpenApiResponse(_ERRORS, description="Over the tenant's rate limit; see Retry-After."),
    },
    parameters=[
        OpenApiParameter("X-AlertDesk-Timestamp", str, OpenApiParameter.HEADER, description="unix seconds"),
        OpenApiParameter("X-AlertDesk-Signature", str, OpenApiParameter.HEADER, description="sha256=<hex>"),
    ],
    auth=[],
    tags=["events"],
)


@method_decorator([login_not_required, mfa_not_required], name="dispatch")
class EventIngestApi(APIView):
    """Client systems authenticate with their tenant's key (and sign the body); no staff session.
    The body is read raw (the signature covers its bytes), so DRF's parsers are not used."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    http_method_names = ["post"]

    @_INGEST_SCHEMA
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


class AlertCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


@extend_schema(parameters=[AlertFilterSerializer], tags=["alerts"])
@method_decorator(shows_data, name="dispatch")
class AlertListApi(ListAPIView):
    """Alerts of the tenants the signed-in staff member works for, newest first (cursor pages)."""

    serializer_class = AlertSerializer
    pagination_class = AlertCursorPagination

    def get_queryset(self):
        filters = AlertFilterSerializer(data=self.request.query_params)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        alerts = alert_list_for(user=self.request.user)
        data = filters.validated_data
        if "status" in data:
            alerts = alerts.filter(status=data["status"])
        if "type" in data:
            alerts = alerts.filter(type=data["type"])
        if "tenant" in data:
            alerts = alerts.filter(tenant__slug=data["tenant"])
        if "min_severity" in data:
            alerts = alerts.filter(severity__gte=data["min_severity"])
        return alerts

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        audit_shown(self.request).objects(page or [], target_type="alerts.alert")
        return page


@extend_schema(tags=["alerts"])
@method_decorator(shows_data, name="dispatch")
class AlertDetailApi(RetrieveAPIView):
    """One alert with its evidence. Another tenant's alert answers 404, like a missing one."""

    serializer_class = AlertDetailSerializer

    def get_object(self):
        alert = alert_get_for(user=self.request.user, alert_id=self.kwargs["alert_id"])
        audit_shown(self.request).object(alert)
        return alert


class _AlertTransitionApi(APIView):
    """One step of an alert's lifecycle. Answers only the new status: the desk reads the alert
    through the (recorded) detail endpoint. Another tenant's alert, or a role that may not work
    alerts, answers 404; a step the status does not allow answers 409."""

    http_method_names = ["post"]

    def step(self, *, alert, actor, note):
        raise NotImplementedError

    def post(self, request, alert_id):
        alert = alert_get_for(user=request.user, alert_id=alert_id, perm=ALERT_CHANGE_PERM)
        data = TransitionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            alert = self.step(alert=alert, actor=request.user, note=data.validated_data["note"])
        except AlertTransitionError as error:
            return Response({"detail": error.messages[0]}, status=409)
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from None
        return Response(TransitionResultSerializer(alert).data)


def _transition_schema(operation_id: str, summary: str):
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        tags=["alerts"],
        request=TransitionSerializer,
        responses={
            200: TransitionResultSerializer,
            400: OpenApiResponse(description="Malformed body, or a dismissal without a note."),
            404: OpenApiResponse(description="No such alert, another tenant's, or a role that may not work alerts."),
            409: OpenApiResponse(description="The alert's status does not allow this step."),
        },
    )


@extend_schema_view(post=_transition_schema("alerts_acknowledge", "Acknowledge: an agent has picked the alert up"))
class AlertAcknowledgeApi(_AlertTransitionApi):
    def step(self, *, alert, actor, note):
        return alert_acknowledge(alert=alert, actor=actor)


@extend_schema_view(
    post=_transition_schema("alerts_resolve", "Resolve: the account is secured or the customer confirmed the activity")
)
class AlertResolveApi(_AlertTransitionApi):
    def step(self, *, alert, actor, note):
        return alert_resolve(alert=alert, actor=actor, note=note)


@extend_schema_view(
    post=_transition_schema("alerts_dismiss", "Dismiss: not a security problem (a note saying why is required)")
)
class AlertDismissApi(_AlertTransitionApi):
    def step(self, *, alert, actor, note):
        return alert_dismiss(alert=alert, actor=actor, note=note)
