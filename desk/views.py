import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.selectors import user_has_tenant_perm
from alerts.geo import locate
from alerts.models import (
    ACTIVE_STATUSES,
    ALERT_TRANSITIONS,
    AccountEvent,
    AlertStatus,
    AlertType,
    EventType,
    Severity,
)
from alerts.rules import agent_family
from alerts.selectors import (
    ALERT_CHANGE_PERM,
    alert_evidence_for,
    alert_get_for,
    alert_get_to_act,
    alert_held_against,
    alert_related_for,
    alert_tenant_ids_for,
)
from alerts.services import (
    AlertClaimConflict,
    AlertTransitionError,
    alert_acknowledge,
    alert_claim,
    alert_dismiss,
    alert_resolve,
)
from audit.decorators import audit_shown, shows_data
from audit.models import Action, AuditEvent
from audit.selectors import audit_changes_of
from config.links import reverse_cached
from desk.queue_reads import RowAlert, queue_rows_page
from desk.selectors import (
    InvalidPositionError,
    QueueFilters,
    QueuePosition,
    case_open_annotation,
    case_open_for_alert,
    case_sight_for,
    queue_alert_get,
    queue_counts,
    queue_get_for,
    queue_list_for,
    queue_pick,
    queue_scope_for,
    queue_siblings,
)
from desk.services import alert_claim_next
from desk.templatetags.desk_tags import form_control


def home(request):
    """The desk's home: the user's first queue (of the tenant they work in, when it has one).
    Someone with no queue sees no alert at all (alerts are seen through queues), and is told how
    to get one."""
    queues = list(queue_list_for(user=request.user))
    if queues:
        current = getattr(request.tenant, "pk", None) if request.tenant else None
        first = next((q for q in queues if q.tenant_id == current), queues[0])
        return redirect("desk:queue", queue_id=first.pk)
    return render(request, "desk/desk_home.html")


# The alert page: one alert with its evidence, the alerts linked to it, its history, and the steps
# the user may take. Read through the access functions only; written through the alert services.

EVIDENCE_SHOWN = 50
HISTORY_SHOWN = 20


class AlertNoteForm(forms.Form):
    note = forms.CharField(max_length=500, required=False, strip=True)


@dataclass(frozen=True)
class EvidenceRow:
    event: AccountEvent
    type_label: str
    place: str
    device: str


@dataclass(frozen=True)
class HistoryRow:
    record: AuditEvent
    what: str
    changes: list[str]


def customer_contacts(customer) -> dict[str, str]:
    """What the page shows of the customer's contacts: the masked forms stored beside the encrypted
    ones (written when the contacts change), so showing an alert decrypts nothing."""
    if customer is None:
        return {}
    return {"email": customer.email_masked, "phone": customer.phone_masked}


def _place(event: AccountEvent) -> str:
    if not event.ip and not event.context.get("geo"):
        return ""
    place = locate(event.ip, event.context.get("geo"))  # offline, cached per address
    return " · ".join(part for part in (place.country, place.network) if part)


def _device(context: dict) -> str:
    if context.get("device_id"):
        return f"Device {context['device_id']}"
    if context.get("user_agent"):
        return agent_family(context["user_agent"])
    return ""


EVENT_TYPE_LABELS = {
    EventType.LOGIN_SUCCEEDED: "Signed in",
    EventType.LOGIN_FAILED: "Sign-in failed",
    EventType.PASSWORD_CHANGED: "Password changed",
    EventType.PASSWORD_RESET_REQUESTED: "Password reset requested",
    EventType.MFA_ENROLLED: "Two-factor method added",
    EventType.MFA_DISABLED: "Two-factor turned off",
    EventType.MFA_CHALLENGE_FAILED: "Two-factor challenge failed",
    EventType.MFA_OTP_SENT: "One-time code sent",
    EventType.RECOVERY_REQUESTED: "Recovery requested",
    EventType.RECOVERY_COMPLETED: "Recovery completed",
    EventType.PROFILE_CHANGED: "Profile changed",
    EventType.THIRD_PARTY_AUTHORIZED: "App authorized",
    EventType.TRANSACTION_CREATED: "Transaction",
}


def _event_type_label(value: str) -> str:
    return EVENT_TYPE_LABELS.get(value, value)


def _history_value(field: str, value) -> str:
    if value is None:
        return "nobody" if field == "assignee" else "—"
    return str(value)


def _history_row(record: AuditEvent) -> HistoryRow:
    changes = record.changes or {}
    status = changes.get("status") or {}
    if record.action == Action.CREATE:
        what = "Raised"
    elif status.get("after"):
        what = AlertStatus(status["after"]).label if status["after"] in AlertStatus.values else status["after"]
    elif isinstance(changes.get("assignee"), dict):
        holder = changes["assignee"].get("after")
        what = "Released" if holder is None else "Claimed" if holder == record.actor_label else "Assigned"
    else:
        what = "New occurrence" if "count" in changes else "Updated"
    shown = [
        f"{field.replace('_', ' ')}: {_history_value(field, value.get('before'))} → "
        f"{_history_value(field, value.get('after'))}"
        for field, value in changes.items()
        if isinstance(value, dict)
        and field not in ("status", "updated_at", "last_seen_at")
        and record.action != Action.CREATE
    ]
    return HistoryRow(record=record, what=what, changes=shown)


def _alert_actions_context(request, alert) -> dict:
    """What the alert page's actions offer the user now (the page, and its live refresh)."""
    may_act = alert.tenant_id in alert_tenant_ids_for(user=request.user, perm=ALERT_CHANGE_PERM)
    allowed = ALERT_TRANSITIONS[alert.status] if may_act else frozenset()
    # Someone else's alert: no step is offered (the services would refuse it), only who holds it;
    # a supervisor stepping in is offered the steps, and told whose alert it is.
    held_by = alert_held_against(user=request.user, alert=alert) if allowed else None
    if held_by is not None:
        allowed = frozenset()
    stepping_in = bool(allowed) and alert.assignee_id not in (None, request.user.pk)
    open_case = case_open_for_alert(user=request.user, alert=alert) if may_act else None
    return {
        "alert": alert,
        "may_act": may_act,
        "held_by": held_by,
        "stepping_in": stepping_in,
        "open_case": open_case,
        "can_acknowledge": AlertStatus.ACKNOWLEDGED in allowed,
        "can_resolve": AlertStatus.RESOLVED in allowed,
        "can_dismiss": AlertStatus.DISMISSED in allowed,
        # Changes whenever what the actions offer changes: the page replaces them only then (a note
        # being typed survives a signal that changed nothing here).
        "actions_state": "/".join(
            str(part)
            for part in (
                alert.status,
                alert.assignee_id or "",
                held_by.pk if held_by else "",
                int(may_act),
                open_case.pk if open_case else "",
                "".join(
                    str(int(s in allowed))
                    for s in (AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED, AlertStatus.DISMISSED)
                ),
            )
        ),
    }


def _alert_page(request, alert, *, status=200, failed_step="", errors=(), note=""):
    """Render the alert page; after a refused step, with its message and the note given."""
    actions = _alert_actions_context(request, alert)
    evidence, evidence_total = alert_evidence_for(alert=alert, limit=EVIDENCE_SHOWN)
    related = alert_related_for(user=request.user, alert=alert)
    history = audit_changes_of(obj=alert, limit=HISTORY_SHOWN)
    audit_shown(request).object(alert)
    if related:
        audit_shown(request).objects(related)
    context = {
        "alert": alert,
        "now": timezone.now(),
        "contacts": customer_contacts(alert.customer),
        "evidence": [
            EvidenceRow(event=e, type_label=_event_type_label(e.type), place=_place(e), device=_device(e.context))
            for e in evidence
        ],
        "evidence_total": evidence_total,
        "evidence_hidden": evidence_total - len(evidence),
        "related": related,
        "history": [_history_row(r) for r in history],
        **actions,
        "failed_step": failed_step,
        "step_errors": list(errors),
        "note": note,
    }
    return render(request, "desk/alert_detail.html", context, status=status)


@require_GET
@shows_data
def alert_detail(request, alert_id: int):
    alert = alert_get_for(
        user=request.user, alert_id=alert_id, with_evidence=False, annotations=case_open_annotation(user=request.user)
    )
    return _alert_page(request, alert)


@require_GET
@shows_data
def alert_actions(request, alert_id: int):
    """The alert page's status, assignee and actions alone, as the user may take them now: what the
    page refetches when a live signal says the alert changed (claimed, released, worked by someone
    else). The same access function as the page: 404 for an alert the user cannot see."""
    alert = alert_get_for(user=request.user, alert_id=alert_id, with_evidence=False)
    audit_shown(request).object(alert)
    return render(request, "desk/alert_actions_fragment.html", _alert_actions_context(request, alert))


STEPS = {
    "acknowledge": (lambda alert, actor, note: alert_acknowledge(alert=alert, actor=actor), "Alert acknowledged."),
    "resolve": (lambda alert, actor, note: alert_resolve(alert=alert, actor=actor, note=note), "Alert resolved."),
    "dismiss": (lambda alert, actor, note: alert_dismiss(alert=alert, actor=actor, note=note), "Alert dismissed."),
}


def _alert_step(request, alert_id: int, step: str):
    """One lifecycle step from the page: 404 for an alert the user cannot see, 403 for one they see
    but may not work, 400 for a bad note, 409 for a step the status does not allow or an alert
    someone else holds (the page again, with the message and the note kept), else back to the page
    (post/redirect/get)."""
    alert = alert_get_to_act(user=request.user, alert_id=alert_id, perm=ALERT_CHANGE_PERM)
    form = AlertNoteForm(request.POST)
    run, done = STEPS[step]
    if not form.is_valid():
        errors = [message for messages in form.errors.values() for message in messages]
        return _refused_page(request, alert, step=step, status=400, errors=errors, note=request.POST.get("note", ""))
    note = form.cleaned_data["note"]
    try:
        run(alert, request.user, note)
    except (AlertTransitionError, AlertClaimConflict) as error:
        alert = alert_get_for(user=request.user, alert_id=alert_id, with_evidence=False)  # its status, holder now
        refusal = error.messages if isinstance(error, AlertTransitionError) else [error.message]
        return _refused_page(request, alert, step=step, status=409, errors=refusal, note=note)
    except ValidationError as error:
        return _refused_page(request, alert, step=step, status=400, errors=error.messages, note=note)
    messages.success(request, done)
    return redirect("desk:alert_detail", alert_id=alert.pk)


def _refused_page(request, alert, *, step, status, errors, note):
    response = _alert_page(request, alert, status=status, failed_step=step, errors=errors, note=note)
    # @shows_data records 2xx answers; this refusal shows the alert's page too, so it says so itself.
    audit_shown(request).record(request)
    return response


@require_POST
@shows_data
def alert_acknowledge_view(request, alert_id: int):
    return _alert_step(request, alert_id, "acknowledge")


@require_POST
@shows_data
def alert_resolve_view(request, alert_id: int):
    return _alert_step(request, alert_id, "resolve")


@require_POST
@shows_data
def alert_dismiss_view(request, alert_id: int):
    return _alert_step(request, alert_id, "dismiss")


# The queue page: the queues the user may work, with counts, and one queue's active alerts in
# queue order, filtered, in keyset pages. Read through the access functions (queue_list_for,
# queue_get_for); claims go through the alert services.

QUEUE_PAGE_SIZE = 50


class QueueFilterForm(forms.Form):
    type = forms.ChoiceField(choices=[("", "Any type"), *AlertType.choices], required=False)
    severity = forms.TypedChoiceField(
        choices=[("", "Any severity"), *Severity.choices], coerce=int, empty_value=None, required=False
    )
    status = forms.ChoiceField(
        choices=[("", "Any status"), *((s.value, s.label) for s in ACTIVE_STATUSES)], required=False
    )
    mine = forms.BooleanField(required=False, label="Mine")
    unassigned = forms.BooleanField(required=False, label="Unassigned")
    customer = forms.CharField(max_length=200, required=False, strip=True, label="Customer id")

    FIELDS = ("type", "severity", "status", "mine", "unassigned", "customer")

    def query(self) -> dict[str, str]:
        """The valid filters as query parameters (for links and redirects), empty ones left out."""
        data = self.cleaned_data if self.is_valid() else {}
        out = {}
        for name in self.FIELDS:
            value = data.get(name)
            if value not in (None, "", False):
                out[name] = "1" if value is True else str(value)
        return out


@dataclass(frozen=True)
class QueueRow:
    alert: RowAlert
    age: str
    due: str
    breaching: bool
    mine: bool
    case: object = None  # the open case the alert is in, when the user may see it


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "< 1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} d"


def _queue_row(alert: RowAlert, *, user_id: int, now: datetime, case=None) -> QueueRow:
    due, breaching = "", False
    if alert.sla_due_at is not None:
        breaching = alert.sla_due_at < now
        due = f"overdue by {_span(now - alert.sla_due_at)}" if breaching else f"in {_span(alert.sla_due_at - now)}"
    mine = alert.assignee_id == user_id
    return QueueRow(
        alert=alert, age=_span(now - alert.first_seen_at), due=due, breaching=breaching, mine=mine, case=case
    )


@functools.cache
def _blank_filter_controls() -> dict[str, str]:
    """The filter controls of a queue page asked without filters: the same on every such request,
    so rendered once a process (building, cleaning and rendering the form was a tenth of the page)."""
    form = QueueFilterForm(QueryDict())
    form.is_valid()
    return {name: form_control(form[name]) for name in QueueFilterForm.FIELDS}


def _queue_context(request, queue_id, query: QueryDict) -> dict:
    """Everything the page and its rows fragment show: a fixed number of queries, whatever the
    page size or the data (the user's queues with their tenants' others, the counts, one page of
    alerts, the customer searched for inside it)."""
    scope = queue_scope_for(user=request.user)  # the user's queues and their tenants' others, in one query
    queues = scope.queues
    queue = queue_pick(queues, queue_id)  # queue_get_for's answer, from the list already read
    if any(name in query for name in QueueFilterForm.FIELDS):
        form = QueueFilterForm(query)
        data = form.cleaned_data if form.is_valid() else {}
        filter_query = form.query()
        controls = {name: form_control(form[name]) for name in QueueFilterForm.FIELDS}
    else:  # most pages: no filter asked
        data, filter_query, controls = {}, {}, _blank_filter_controls()
    try:
        after = QueuePosition.decode(query["cursor"]) if query.get("cursor") else None
    except InvalidPositionError:
        raise Http404("Invalid cursor") from None
    filters = QueueFilters(
        type=data.get("type") or "",
        severity=data.get("severity"),
        status=data.get("status") or "",
        assignee_id=request.user.pk if data.get("mine") else None,
        unassigned=bool(data.get("unassigned")),
        customer=data.get("customer") or None,
    )
    siblings = scope.siblings
    counts = queue_counts(queues=queues, siblings=siblings)
    alerts, position = queue_rows_page(
        queue=queue,
        siblings=siblings,
        after=after,
        size=QUEUE_PAGE_SIZE,
        filters=filters,
        cases=case_sight_for(user=request.user, queues=queues),  # each row's open case, in the same query
    )
    audit_shown(request).objects(alerts, target_type="alerts.alert")
    now = timezone.now()
    user_id = request.user.pk  # once: request.user is a lazy object, each attribute a detour
    base = reverse_cached("desk:queue", kwargs={"queue_id": queue.pk})
    for q in queues:
        q.counts = counts.get(q.pk, {"active": 0, "unassigned": 0, "breaching": 0})
    return {
        "queues": queues,
        "queue": queue,
        "counts": counts.get(queue.pk),
        "controls": controls,
        "filtered": bool(filter_query),
        "rows": [_queue_row(a, user_id=user_id, now=now, case=a.open_case) for a in alerts],
        "first_page": after is None,
        "older_url": f"{base}?{urlencode({**filter_query, 'cursor': position.encode()})}" if position else "",
        "newest_url": f"{base}?{urlencode(filter_query)}" if filter_query else base,
        "return_query": urlencode(filter_query),
        "rows_url": reverse_cached("desk:queue_rows", kwargs={"queue_id": queue.pk}),
        "may_work": queue.tenant_id in alert_tenant_ids_for(user=request.user, perm=ALERT_CHANGE_PERM),
    }


@require_GET
@shows_data
def queue_page(request, queue_id: int):
    return render(request, "desk/queue_page.html", _queue_context(request, queue_id, request.GET))


@require_GET
@shows_data
def queue_rows(request, queue_id: int):
    """The rows of the queue page alone (and its counts), for the page's refetch after a live signal."""
    return render(request, "desk/queue_rows.html", _queue_context(request, queue_id, request.GET))


def _back_to_queue(queue, return_query: str):
    """The queue page with the filters the user had (only the known ones, validated again)."""
    form = QueueFilterForm(QueryDict(return_query[:1000]))
    query = urlencode(form.query())
    url = reverse("desk:queue", kwargs={"queue_id": queue.pk})
    return redirect(f"{url}?{query}" if query else url)


@require_POST
@shows_data
def queue_claim(request, queue_id: int, alert_id: int):
    """Claim one alert of the queue from its row: 404 for a queue or alert the user cannot see (or
    not in this queue, or final), 403 for a role that may not work alerts, 409 with the queue page
    and a message when someone else holds it; else back to the queue (post/redirect/get)."""
    queue = queue_get_for(user=request.user, queue_id=queue_id)
    alert = queue_alert_get(queue=queue, siblings=queue_siblings([queue]), alert_id=alert_id)
    if not user_has_tenant_perm(user=request.user, tenant=queue.tenant, perm=ALERT_CHANGE_PERM):
        raise PermissionDenied("Your role may not work alerts of this client.")
    try:
        alert_claim(alert=alert, actor=request.user)
    except AlertClaimConflict as error:
        query = QueryDict(request.POST.get("return_query", "")[:1000])
        context = _queue_context(request, queue.pk, query)
        context["conflict"] = error.message
        response = render(request, "desk/queue_page.html", context, status=409)
        audit_shown(request).record(request)  # a refusal that shows the queue: recorded here
        return response
    messages.success(request, f"Alert #{alert.pk} is yours.")
    return _back_to_queue(queue, request.POST.get("return_query", ""))


@require_POST
@shows_data
def queue_next(request, queue_id: int):
    """Take the next alert of the queue: to its page when there was one, else back with a message."""
    queue = queue_get_for(user=request.user, queue_id=queue_id)
    claimed = alert_claim_next(queue=queue, siblings=queue_siblings([queue]), actor=request.user)
    if claimed is None:
        messages.info(request, "Nothing left to claim in this queue.")
        return _back_to_queue(queue, request.POST.get("return_query", ""))
    return redirect("desk:alert_detail", alert_id=claimed.pk)
