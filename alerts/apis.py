"""The account-event ingestion API (contracts/events.md): POST /api/v1/events/, and the staff
alert API. Errors come from the project's exception handler (config/api.py) in each contract's shape."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.exceptions import MethodNotAllowed, Throttled
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.decorators import mfa_not_required
from alerts.filters import alert_list_filtered
from alerts.keys import EventApiKeyAuthentication, TenantIsActive
from alerts.models import AlertStatus, AlertType
from alerts.selectors import (
    ALERT_CHANGE_PERM,
    ALERT_REASSIGN_PERM,
    alert_get_for,
    alert_get_to_act,
    staff_get_by_username,
)
from alerts.serializers import (
    AlertDetailSerializer,
    AlertSerializer,
    AssigneeResultSerializer,
    AssignSerializer,
    TransitionResultSerializer,
    TransitionSerializer,
)
from alerts.services import (
    AlertClaimConflict,
    AlertTransitionError,
    alert_acknowledge,
    alert_claim,
    alert_dismiss,
    alert_reassign,
    alert_release,
    alert_resolve,
    events_ingest,
)
from alerts.throttles import TenantEventRateThrottle
from alerts.validation import EVENT_TYPES, validate_body
from audit.decorators import audit_shown, shows_data
from config.api import Conflict, FieldErrors, StrictCursorPagination

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
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with an offset (whole minutes, +-15:59 at most); from 2000, up to 5 minutes ahead",
        },
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
                    "required": ["events"],
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
    """Client systems authenticate with their tenant's key and sign the raw body (no staff
    session); then the body is parsed (depth-limited JSON), counted against the tenant's rate
    and validated, all or nothing."""

    authentication_classes = [EventApiKeyAuthentication]  # 401, and 413 while reading the body
    permission_classes = [TenantIsActive]  # 403
    throttle_classes = [TenantEventRateThrottle]  # 429 with Retry-After
    http_method_names = ["post"]
    error_format = "events"

    def initial(self, request, *args, **kwargs):
        # A method the endpoint does not have is a 405, before any key or body is looked at.
        if request.method.lower() not in self.http_method_names:
            raise MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def throttled(self, request, wait):
        raise Throttled(wait, detail="over this tenant's rate limit.")

    @_INGEST_SCHEMA
    def post(self, request):
        result = validate_body(request.data, max_batch=settings.INGEST_MAX_BATCH)
        if result.errors:
            raise FieldErrors(result.errors)
        key = request.auth
        accepted, duplicates, _ = events_ingest(tenant=key.tenant, events=result.events, key_prefix=key.prefix)
        return Response({"accepted": accepted, "duplicates": duplicates}, status=202)


class AlertCursorPagination(StrictCursorPagination):
    ordering = "-id"
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


_ALERT_FILTERS = [
    OpenApiParameter("status", str, enum=AlertStatus.values),
    OpenApiParameter("type", str, enum=AlertType.values),
    OpenApiParameter("tenant", str, pattern="^[-a-zA-Z0-9_]+$", description="a tenant's slug"),
    OpenApiParameter("min_severity", {"type": "integer", "minimum": 1, "maximum": 4}, description="1 (low) to 4"),
]


@extend_schema(parameters=_ALERT_FILTERS, tags=["alerts"])
@method_decorator(shows_data, name="dispatch")
class AlertListApi(ListAPIView):
    """Alerts of the tenants the signed-in staff member works for, newest first (cursor pages)."""

    serializer_class = AlertSerializer
    pagination_class = AlertCursorPagination

    def get_queryset(self):
        return alert_list_filtered(user=self.request.user, params=self.request.query_params)

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
    through the (recorded) detail endpoint. An alert the caller cannot see answers 404; one they
    see with a role that may not work it, 403; a step the status does not allow, or an alert
    another staff member holds (unless the caller's role may reassign alerts of its tenant), 409."""

    http_method_names = ["post"]

    def step(self, *, alert, actor, note):
        raise NotImplementedError

    def post(self, request, alert_id):
        alert = alert_get_to_act(user=request.user, alert_id=alert_id, perm=ALERT_CHANGE_PERM)
        data = TransitionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            alert = self.step(alert=alert, actor=request.user, note=data.validated_data["note"])
        except AlertTransitionError as error:
            raise Conflict(error.messages[0]) from None
        except AlertClaimConflict as error:
            raise Conflict(error.message) from None
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
            403: OpenApiResponse(description="The caller sees the alert, but their role may not work it."),
            404: OpenApiResponse(description="No such alert, or one the caller may not see."),
            409: OpenApiResponse(
                description="The alert's status does not allow this step, or another staff member holds it "
                "(a supervisor or admin of its tenant may act on it anyway)."
            ),
        },
    )


@extend_schema_view(
    post=_transition_schema(
        "alerts_acknowledge", "Acknowledge: an agent has picked the alert up (and holds it, if nobody did)"
    )
)
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


def _assignee_schema(operation_id: str, summary: str, conflict: str, request=None, extra: dict | None = None):
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        tags=["alerts"],
        request=request,
        responses={
            200: AssigneeResultSerializer,
            403: OpenApiResponse(description="The caller sees the alert, but their role may not do this."),
            404: OpenApiResponse(description="No such alert, or one the caller may not see."),
            409: OpenApiResponse(description=conflict),
            **(extra or {}),
        },
    )


class _AlertAssigneeApi(APIView):
    """Who holds an alert. Answers `{"id", "assignee"}`; the desk reads the rest through the
    (recorded) detail endpoint. 404 for an alert the caller cannot see, 403 for a role that may not
    do this, 409 when the holder or the status does not allow it."""

    http_method_names = ["post"]
    perm = ALERT_CHANGE_PERM

    def change(self, *, alert, request):
        raise NotImplementedError

    def post(self, request, alert_id):
        alert = alert_get_to_act(user=request.user, alert_id=alert_id, perm=self.perm)
        try:
            alert = self.change(alert=alert, request=request)
        except AlertClaimConflict as error:
            raise Conflict(error.message) from None
        return Response(AssigneeResultSerializer(alert).data)


@extend_schema_view(
    post=_assignee_schema(
        "alerts_claim",
        "Claim: the caller works the alert (again: no change)",
        "Another staff member holds the alert, or it is resolved or dismissed.",
    )
)
class AlertClaimApi(_AlertAssigneeApi):
    def change(self, *, alert, request):
        return alert_claim(alert=alert, actor=request.user)


@extend_schema_view(
    post=_assignee_schema(
        "alerts_release",
        "Release: give the alert back to its queue (a supervisor of the tenant may release anyone's)",
        "The caller does not hold the alert (and may not release others'), or it is resolved or dismissed.",
    )
)
class AlertReleaseApi(_AlertAssigneeApi):
    def change(self, *, alert, request):
        return alert_release(alert=alert, actor=request.user)


@extend_schema_view(
    post=_assignee_schema(
        "alerts_assign",
        "Assign: a supervisor hands the alert to a staff member who works the tenant's alerts",
        "The alert is resolved or dismissed.",
        request=AssignSerializer,
        extra={400: OpenApiResponse(description="Malformed body, or nobody by that name works this client's alerts.")},
    )
)
class AlertAssignApi(_AlertAssigneeApi):
    perm = ALERT_REASSIGN_PERM

    def change(self, *, alert, request):
        data = AssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        to = staff_get_by_username(username=data.validated_data["username"])
        return alert_reassign(alert=alert, actor=request.user, to=to)
