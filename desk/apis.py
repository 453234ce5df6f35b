"""The staff queue and case API (contracts/staff-api.md, "Queues and alerts" and "Cases"): the queues
the caller may work or supervise, a queue's active alerts in queue order in keyset pages, and the
cases. Errors come from the project's exception handler (config/api.py)."""

from django.core.exceptions import PermissionDenied
from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.exceptions import NotFound, Throttled, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from accounts.selectors import user_has_tenant_perm
from alerts.selectors import alert_get_for, staff_get_by_username
from alerts.serializers import AlertSerializer
from audit.decorators import audit_shown, shows_data
from config.api import Conflict, StrictCursorPagination
from desk.action_services import ActionRefused, action_approve, action_release_now, action_request
from desk.models import Case, CaseStatus, VerificationMethod, VerificationState
from desk.selectors import (
    CASE_CHANGE_PERM,
    CASE_SUPERVISE_PERM,
    InvalidPositionError,
    QueuePosition,
    case_action_get,
    case_get_to_act,
    case_list_for,
    case_with_alert_ids,
    queue_alerts,
    queue_alerts_page,
    queue_counts,
    queue_get_for,
    queue_list_for,
    queue_siblings,
)
from desk.serializers import (
    ActionApproveInputSerializer,
    ActionInputSerializer,
    ActionResultSerializer,
    CaseAssigneeResultSerializer,
    CaseListFilterSerializer,
    CaseSerializer,
    CheckInputSerializer,
    CheckResultSerializer,
    ConcernInputSerializer,
    ConcernResultSerializer,
    KnowledgeInputSerializer,
    KnowledgeResultSerializer,
    NoteInputSerializer,
    NoteResultSerializer,
    QueueAlertPageSerializer,
    QueueSerializer,
    RevealInputSerializer,
    RevealResultSerializer,
    ShareInputSerializer,
    ShareResultSerializer,
    StatusInputSerializer,
    StatusResultSerializer,
    VerificationCheckInputSerializer,
    VerificationCheckResultSerializer,
    VerificationInputSerializer,
    VerificationResultSerializer,
)
from desk.services import (
    CaseConflict,
    alert_claim_next,
    case_claim,
    case_close,
    case_note_add,
    case_open,
    case_reveal,
    case_share,
    case_status_set,
    case_unshare,
    concern_raise,
    playbook_step_check,
)
from desk.verification import (
    KnowledgeUnavailable,
    VerificationConflict,
    VerificationThrottled,
    verification_callback_record,
    verification_check,
    verification_knowledge_check,
    verification_request,
)

_NOT_FOUND = OpenApiResponse(description="No such queue, or one the caller may not see (the same answer).")


@method_decorator(shows_data, name="dispatch")
class QueueListApi(APIView):
    """The queues the caller may work (granted) or supervise, with their counts."""

    http_method_names = ["get"]

    @extend_schema(operation_id="queues_list", responses={200: QueueSerializer(many=True)}, tags=["queues"])
    def get(self, request):
        queues = list(queue_list_for(user=request.user))
        counts = queue_counts(queues=queues, siblings=queue_siblings(queues))
        for queue in queues:
            queue.counts = counts[queue.pk]
        audit_shown(request).objects(queues, target_type="desk.queue")
        return Response(QueueSerializer(queues, many=True).data)


@method_decorator(shows_data, name="dispatch")
class QueueAlertListApi(APIView):
    """A queue's active alerts (open, acknowledged) in queue order: most severe first, then the
    soonest SLA due time, then the oldest, then by id. Keyset pages: the cost of a page does not
    depend on how deep it is."""

    http_method_names = ["get"]
    page_size = 50
    max_page_size = 200

    @extend_schema(
        operation_id="queues_alerts",
        parameters=[
            OpenApiParameter("cursor", str, description="from `next` of the previous page"),
            OpenApiParameter(
                "page_size", {"type": "integer", "minimum": 1, "maximum": 200}, description="50 unless given"
            ),
        ],
        responses={200: QueueAlertPageSerializer, 404: _NOT_FOUND},
        tags=["queues"],
    )
    def get(self, request, queue_id):
        queue = queue_get_for(user=request.user, queue_id=queue_id)
        cursor = request.query_params.get("cursor")
        try:
            after = QueuePosition.decode(cursor) if cursor is not None else None
        except InvalidPositionError:
            raise NotFound("Invalid cursor") from None
        page, position = queue_alerts_page(
            queue=queue, siblings=queue_siblings([queue]), after=after, size=self._page_size(request)
        )
        next_url = None
        if position is not None:
            next_url = replace_query_param(request.build_absolute_uri(), "cursor", position.encode())
        audit_shown(request).objects(page, target_type="alerts.alert")
        return Response({"results": AlertSerializer(page, many=True).data, "next": next_url})

    def _page_size(self, request) -> int:
        # As DRF's pagination: a page size it cannot take falls back to the default.
        value = request.query_params.get("page_size", "")
        if value.isascii() and value.isdigit() and 0 < int(value):
            return min(int(value), self.max_page_size)
        return self.page_size


@method_decorator(shows_data, name="dispatch")
class QueueNextApi(APIView):
    """Hand the caller the best alert of the queue that nobody holds, claimed for them (the claim is
    recorded by the service, the alert shown by this answer). 204 when none is left."""

    http_method_names = ["post"]

    @extend_schema(
        operation_id="queues_next",
        summary="Next: claim the best unclaimed alert of the queue",
        request=None,
        responses={
            200: AlertSerializer,
            204: OpenApiResponse(description="Nothing left to claim in this queue."),
            403: OpenApiResponse(description="The caller sees the queue, but their role may not work alerts."),
            404: _NOT_FOUND,
        },
        tags=["queues"],
    )
    def post(self, request, queue_id):
        queue = queue_get_for(user=request.user, queue_id=queue_id)
        siblings = queue_siblings([queue])
        claimed = alert_claim_next(queue=queue, siblings=siblings, actor=request.user)
        if claimed is None:
            # Nothing shown but the fact that the queue had nothing left: recorded as such.
            audit_shown(request).page("desk.queue_next", tenant=queue.tenant, queue=queue.pk)
            return Response(status=204)
        alert = queue_alerts(queue=queue, siblings=siblings).filter(pk=claimed.pk).first() or claimed
        audit_shown(request).object(alert)
        return Response(AlertSerializer(alert).data)


# --- cases (contracts/staff-api.md, "Cases") ---------------------------------------------------------
#
# Every case is fetched through the access functions: 404 for a case the caller cannot see (another
# tenant's, an ungranted queue's, a missing id: the same body), 403 for one they see with a role
# that may not do this, 409 when the case's state does not allow it. Answers carry ids, states and
# masked contacts; the reveal endpoint alone answers a clear value.

_CASE_NOT_FOUND = OpenApiResponse(description="No such case, or one the caller may not see (the same answer).")
_CASE_FORBIDDEN = OpenApiResponse(description="The caller sees the case, but their role may not do this.")
_CASE_BAD_INPUT = OpenApiResponse(description='Malformed body: `{"errors": [{"field", "message"}]}`.')


class CaseCursorPagination(StrictCursorPagination):
    ordering = "-id"
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


@extend_schema_view(
    get=extend_schema(
        operation_id="cases_list",
        parameters=[
            OpenApiParameter("customer", {"type": "integer", "minimum": 1}, description="a customer's id"),
            OpenApiParameter("status", str, enum=CaseStatus.values),
        ],
        tags=["cases"],
    )
)
@method_decorator(shows_data, name="dispatch")
class CaseListApi(ListAPIView):
    """The cases the caller may see, newest first (cursor pages), narrowed to one customer's with
    `?customer=`."""

    serializer_class = CaseSerializer
    pagination_class = CaseCursorPagination

    def get_queryset(self):
        params = CaseListFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        cases = case_with_alert_ids(case_list_for(user=self.request.user))
        if "customer" in params.validated_data:
            cases = cases.filter(customer_id=params.validated_data["customer"])
        if "status" in params.validated_data:
            cases = cases.filter(status=params.validated_data["status"])
        return cases

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        audit_shown(self.request).objects(page or [], target_type="desk.case")
        return page


def _case_for_answer(user, case_id) -> Case:
    """The case as the API answers it (with its alerts' ids), through the access function."""
    try:
        return case_with_alert_ids(case_list_for(user=user)).get(pk=int(case_id))
    except (Case.DoesNotExist, ValueError, TypeError, OverflowError):
        raise NotFound("No such case.") from None


@extend_schema_view(
    get=extend_schema(
        operation_id="cases_retrieve", responses={200: CaseSerializer, 404: _CASE_NOT_FOUND}, tags=["cases"]
    )
)
@method_decorator(shows_data, name="dispatch")
class CaseDetailApi(APIView):
    """One case. Another tenant's, or one outside the caller's queues and shares, answers 404."""

    http_method_names = ["get"]

    def get(self, request, case_id):
        case = _case_for_answer(request.user, case_id)
        audit_shown(request).object(case)
        return Response(CaseSerializer(case).data)


@extend_schema_view(
    post=extend_schema(
        operation_id="alerts_case",
        summary="The open case of this alert's customer, opened if none (the alert is added to it)",
        request=None,
        responses={
            200: CaseSerializer,
            201: CaseSerializer,
            400: OpenApiResponse(description="The alert is about no single account."),
            403: OpenApiResponse(
                description="The caller's role may not work cases, or the customer's open case is in a queue they do "
                "not work."
            ),
            404: OpenApiResponse(description="No such alert, or one the caller may not see."),
        },
        tags=["cases"],
    )
)
@method_decorator(shows_data, name="dispatch")
class AlertCaseApi(APIView):
    """200 with the customer's open case (the alert added to it), 201 when this opened it."""

    http_method_names = ["post"]

    def post(self, request, alert_id):
        alert = alert_get_for(user=request.user, alert_id=alert_id, with_evidence=False)
        if not user_has_tenant_perm(user=request.user, tenant=alert.tenant, perm=CASE_CHANGE_PERM):
            raise PermissionDenied("Your role may not work cases of this client.")
        case, opened = case_open(actor=request.user, alert=alert)
        case = _case_for_answer(request.user, case.pk)
        audit_shown(request).object(case)
        return Response(CaseSerializer(case).data, status=201 if opened else 200)


class _CaseStepApi(APIView):
    """One step on a case: the case through case_get_to_act (404, 403), the body through its
    serializer (400), then the service (409 for a state that does not allow it)."""

    http_method_names = ["post"]
    perm = CASE_CHANGE_PERM
    input_serializer = None

    def step(self, *, case, data, request):
        raise NotImplementedError

    def post(self, request, case_id):
        case = case_get_to_act(user=request.user, case_id=case_id, perm=self.perm)
        data = {}
        if self.input_serializer is not None:
            serializer = self.input_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        try:
            return self.step(case=case, data=data, request=request)
        except CaseConflict as error:
            raise Conflict(error.message) from None


def _step_schema(operation_id: str, summary: str, *, request, ok: int, result, conflict: str = "", extra=None):
    responses = {ok: result, 400: _CASE_BAD_INPUT, 403: _CASE_FORBIDDEN, 404: _CASE_NOT_FOUND, **(extra or {})}
    if conflict:
        responses[409] = OpenApiResponse(description=conflict)
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation_id, summary=summary, request=request, responses=responses, tags=["cases"]
        )
    )


@_step_schema(
    "cases_notes_create", "Add a note to the case", request=NoteInputSerializer, ok=201, result=NoteResultSerializer
)
class CaseNoteApi(_CaseStepApi):
    input_serializer = NoteInputSerializer

    def step(self, *, case, data, request):
        note = case_note_add(actor=request.user, case=case, body=data["body"])
        return Response(NoteResultSerializer(note).data, status=201)


@_step_schema(
    "cases_status",
    "Set the case's status: open, waiting_on_customer, or resolved with an outcome",
    request=StatusInputSerializer,
    ok=200,
    result=StatusResultSerializer,
    conflict="The case is resolved already.",
)
class CaseStatusApi(_CaseStepApi):
    input_serializer = StatusInputSerializer

    def step(self, *, case, data, request):
        if data["status"] == CaseStatus.RESOLVED:
            case = case_close(actor=request.user, case=case, outcome=data["outcome"], note=data["note"])
        else:
            case = case_status_set(actor=request.user, case=case, status=data["status"])
        return Response(StatusResultSerializer(case).data)


@_step_schema(
    "cases_claim",
    "Claim: the caller works the case (again: no change)",
    request=None,
    ok=200,
    result=CaseAssigneeResultSerializer,
    conflict="Another staff member holds the case, or it is resolved.",
)
class CaseClaimApi(_CaseStepApi):
    def step(self, *, case, data, request):
        return Response(CaseAssigneeResultSerializer(case_claim(actor=request.user, case=case)).data)


@_step_schema(
    "cases_reveal",
    "Reveal one field of the customer's personal data, with a reason (verified customer or supervisor only)",
    request=RevealInputSerializer,
    ok=200,
    result=RevealResultSerializer,
    extra={
        403: OpenApiResponse(description="The customer is not verified in this case and the caller is no supervisor.")
    },
)
class CaseRevealApi(_CaseStepApi):
    """The only answer of the API that carries a clear value: recorded by the service (a reveal,
    with its reason), never cached."""

    input_serializer = RevealInputSerializer

    def step(self, *, case, data, request):
        value, reveal = case_reveal(
            actor=request.user,
            case=case,
            field=data["field"],
            reason_code=data["reason_code"],
            reason_text=data["reason"],
        )
        response = Response({"field": reveal.field, "value": value, "expires_at": reveal.expires_at})
        response["Cache-Control"] = "no-store"
        return response


@_step_schema(
    "cases_concerns_create",
    "Report a security concern on the case (suspected social engineering or phishing): supervisors hear of it live",
    request=ConcernInputSerializer,
    ok=201,
    result=ConcernResultSerializer,
)
class CaseConcernApi(_CaseStepApi):
    input_serializer = ConcernInputSerializer

    def step(self, *, case, data, request):
        concern = concern_raise(actor=request.user, case=case, kind=data["kind"], note=data["note"])
        return Response(ConcernResultSerializer(concern).data, status=201)


@_step_schema(
    "cases_playbook_check",
    "Tick a step of the playbook of one of the case's alert types",
    request=CheckInputSerializer,
    ok=201,
    result=CheckResultSerializer,
)
class CaseCheckApi(_CaseStepApi):
    input_serializer = CheckInputSerializer

    def step(self, *, case, data, request):
        check = playbook_step_check(actor=request.user, case=case, alert_type=data["alert_type"], step_key=data["step"])
        return Response(CheckResultSerializer(check).data, status=201)


class _CaseShareApi(_CaseStepApi):
    perm = CASE_SUPERVISE_PERM
    input_serializer = ShareInputSerializer
    shared = True

    def step(self, *, case, data, request):
        user = staff_get_by_username(username=data["username"])
        (case_share if self.shared else case_unshare)(actor=request.user, case=case, user=user)
        return Response({"case": case.pk, "username": data["username"], "shared": self.shared})


@_step_schema(
    "cases_share",
    "Share the case with a specialist of the tenant (supervisors)",
    request=ShareInputSerializer,
    ok=200,
    result=ShareResultSerializer,
)
class CaseShareApi(_CaseShareApi):
    shared = True


@_step_schema(
    "cases_unshare",
    "Take a shared case back from a specialist (supervisors)",
    request=ShareInputSerializer,
    ok=200,
    result=ShareResultSerializer,
)
class CaseUnshareApi(_CaseShareApi):
    shared = False


# --- verification and account actions (contracts/staff-api.md, "Cases") ---------------------------


class _TooMany(Throttled):
    default_detail = "Too many tries."

    def __init__(self, detail):
        super().__init__(wait=None, detail=detail)


@_step_schema(
    "cases_verification_create",
    "Verify the caller: send a one-time code to the customer's channel on file (otp, push_match), or record a "
    "callback to the number on file (callback). No address may be given.",
    request=VerificationInputSerializer,
    ok=202,
    result=VerificationResultSerializer,
    conflict="Another verification of this customer is in progress (the answer says who and since when).",
    extra={429: OpenApiResponse(description="Too many codes for this customer or case lately.")},
)
class CaseVerificationApi(_CaseStepApi):
    input_serializer = VerificationInputSerializer

    def step(self, *, case, data, request):
        try:
            if data["method"] == VerificationMethod.CALLBACK:
                verification = verification_callback_record(actor=request.user, case=case, note=data["note"])
                return Response(VerificationResultSerializer(verification).data, status=200)
            verification = verification_request(
                actor=request.user, case=case, method=data["method"], channel=data["channel"]
            )
        except VerificationConflict as error:
            raise Conflict(error.message) from None
        except VerificationThrottled as error:
            raise _TooMany(error.message) from None
        return Response(VerificationResultSerializer(verification).data, status=202)


@_step_schema(
    "cases_verification_check",
    "Check the code the customer reads out: 200 verified; 400 wrong or expired; 429 after too many tries",
    request=VerificationCheckInputSerializer,
    ok=200,
    result=VerificationCheckResultSerializer,
    conflict="No code is waiting on this case.",
    extra={429: OpenApiResponse(description="Too many wrong codes: the verification failed.")},
)
class CaseVerificationCheckApi(_CaseStepApi):
    input_serializer = VerificationCheckInputSerializer

    def step(self, *, case, data, request):
        try:
            result = verification_check(actor=request.user, case=case, code=data["code"])
        except VerificationConflict as error:
            raise Conflict(error.message) from None
        if result.verified:
            return Response({"verified": True, "valid_until": result.verification.valid_until})
        if result.reason == "too_many":
            raise _TooMany(result.message)
        raise ValidationError({"code": [result.message]})


class _Unavailable(Conflict):
    status_code = 502
    default_detail = "The client's systems did not answer."
    default_code = "bad_gateway"


@_step_schema(
    "cases_verification_knowledge",
    "Check the caller's answers to the tenant's knowledge questions with the client's systems (a weak "
    "verification: never enough alone for a high-risk action): 200 verified; 400 no match or malformed",
    request=KnowledgeInputSerializer,
    ok=200,
    result=KnowledgeResultSerializer,
    conflict="The case is resolved, or another agent's code is waiting for this customer.",
    extra={
        429: OpenApiResponse(description="Too many knowledge checks for this customer lately."),
        502: OpenApiResponse(description="The client's systems did not check the answers (nothing verified)."),
    },
)
class CaseKnowledgeApi(_CaseStepApi):
    input_serializer = KnowledgeInputSerializer

    def step(self, *, case, data, request):
        try:
            verification = verification_knowledge_check(actor=request.user, case=case, answers=data["answers"])
        except VerificationConflict as error:
            raise Conflict(error.message) from None
        except VerificationThrottled as error:
            raise _TooMany(error.message) from None
        except KnowledgeUnavailable as error:
            raise _Unavailable(error.message) from None
        if verification.state != VerificationState.VERIFIED:
            raise ValidationError({"answers": ["The answers do not match the client's records."]})
        return Response({"verified": True, "strength": verification.strength, "valid_until": verification.valid_until})


@_step_schema(
    "cases_actions_create",
    "Ask the client's systems to act on the customer's account (sent as the signed webhook)",
    request=ActionInputSerializer,
    ok=202,
    result=ActionResultSerializer,
    conflict="The customer is not verified (strongly, for a high-risk action) and no supervisor asked.",
)
class CaseActionApi(_CaseStepApi):
    input_serializer = ActionInputSerializer

    def step(self, *, case, data, request):
        try:
            account_action = action_request(actor=request.user, case=case, action=data["action"], params=data["params"])
        except ActionRefused as error:
            raise Conflict(error.message) from None
        return Response(ActionResultSerializer(account_action).data, status=202)


@_step_schema(
    "cases_actions_approve",
    "A supervisor (not the one who asked) approves an account action waiting for approval, with a reason",
    request=ActionApproveInputSerializer,
    ok=200,
    result=ActionResultSerializer,
    conflict="The action is not waiting for approval, or the customer's strong verification has ended.",
)
class CaseActionApproveApi(_CaseStepApi):
    perm = CASE_SUPERVISE_PERM
    input_serializer = ActionApproveInputSerializer

    def post(self, request, case_id, action_id):
        self.action_id = action_id
        return super().post(request, case_id)

    service = staticmethod(action_approve)

    def step(self, *, case, data, request):
        account_action = case_action_get(case=case, action_id=self.action_id)
        try:
            account_action = self.service(actor=request.user, account_action=account_action, reason=data["reason"])
        except ActionRefused as error:
            raise Conflict(error.message) from None
        return Response(ActionResultSerializer(account_action).data)


@_step_schema(
    "cases_actions_release",
    "A supervisor sends an action waiting for its hold (the customer was told of a contact change) before the "
    "hold ends, with a reason",
    request=ActionApproveInputSerializer,
    ok=200,
    result=ActionResultSerializer,
    conflict="The action is not waiting, or the customer answered No to its notice (it is on hold).",
)
class CaseActionReleaseApi(CaseActionApproveApi):
    service = staticmethod(action_release_now)
