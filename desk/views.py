from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from alerts.geo import locate
from alerts.models import ACTIVE_STATUSES, ALERT_TRANSITIONS, AccountEvent, AlertStatus, EventType
from alerts.rules import agent_family
from alerts.selectors import (
    ALERT_CHANGE_PERM,
    alert_evidence_for,
    alert_get_for,
    alert_get_to_act,
    alert_list_for,
    alert_related_for,
    alert_tenant_ids_for,
)
from alerts.services import AlertTransitionError, alert_acknowledge, alert_dismiss, alert_resolve
from audit.decorators import audit_shown, shows_data
from audit.models import Action, AuditEvent
from audit.selectors import audit_changes_of


def home(request):
    """The desk's home: where the agent's queues will live. Until they do, it says only what is
    true: how many active alerts the current tenant has (a number: no alert's data is shown)."""
    active_alerts = None
    if request.tenant:
        active_alerts = (
            alert_list_for(user=request.user).filter(tenant=request.tenant, status__in=ACTIVE_STATUSES).count()
        )
    return render(request, "desk/desk_home.html", {"active_alerts": active_alerts})


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


def _history_row(record: AuditEvent) -> HistoryRow:
    changes = record.changes or {}
    status = changes.get("status") or {}
    if record.action == Action.CREATE:
        what = "Raised"
    elif status.get("after"):
        what = AlertStatus(status["after"]).label if status["after"] in AlertStatus.values else status["after"]
    else:
        what = "New occurrence" if "count" in changes else "Updated"
    shown = [
        f"{field.replace('_', ' ')}: {value.get('before', '')} → {value.get('after', '')}"
        for field, value in changes.items()
        if isinstance(value, dict)
        and field not in ("status", "updated_at", "last_seen_at")
        and record.action != Action.CREATE
    ]
    return HistoryRow(record=record, what=what, changes=shown)


def _alert_page(request, alert, *, status=200, failed_step="", errors=(), note=""):
    """Render the alert page; after a refused step, with its message and the note given."""
    may_act = alert.tenant_id in alert_tenant_ids_for(user=request.user, perm=ALERT_CHANGE_PERM)
    allowed = ALERT_TRANSITIONS[alert.status] if may_act else frozenset()
    evidence, evidence_total = alert_evidence_for(alert=alert, limit=EVIDENCE_SHOWN)
    related = alert_related_for(user=request.user, alert=alert)
    history = audit_changes_of(obj=alert, limit=HISTORY_SHOWN)
    audit_shown(request).object(alert)
    if related:
        audit_shown(request).objects(related)
    context = {
        "alert": alert,
        "contacts": customer_contacts(alert.customer),
        "evidence": [
            EvidenceRow(event=e, type_label=_event_type_label(e.type), place=_place(e), device=_device(e.context))
            for e in evidence
        ],
        "evidence_total": evidence_total,
        "evidence_hidden": evidence_total - len(evidence),
        "related": related,
        "history": [_history_row(r) for r in history],
        "may_act": may_act,
        "can_acknowledge": AlertStatus.ACKNOWLEDGED in allowed,
        "can_resolve": AlertStatus.RESOLVED in allowed,
        "can_dismiss": AlertStatus.DISMISSED in allowed,
        "failed_step": failed_step,
        "step_errors": list(errors),
        "note": note,
    }
    return render(request, "desk/alert_detail.html", context, status=status)


@require_GET
@shows_data
def alert_detail(request, alert_id: int):
    alert = alert_get_for(user=request.user, alert_id=alert_id, with_evidence=False)
    return _alert_page(request, alert)


STEPS = {
    "acknowledge": (lambda alert, actor, note: alert_acknowledge(alert=alert, actor=actor), "Alert acknowledged."),
    "resolve": (lambda alert, actor, note: alert_resolve(alert=alert, actor=actor, note=note), "Alert resolved."),
    "dismiss": (lambda alert, actor, note: alert_dismiss(alert=alert, actor=actor, note=note), "Alert dismissed."),
}


def _alert_step(request, alert_id: int, step: str):
    """One lifecycle step from the page: 404 for an alert the user cannot see, 403 for one they see
    but may not work, 400 for a bad note, 409 for a step the status does not allow (the page again,
    with the message and the note kept), else back to the page (post/redirect/get)."""
    alert = alert_get_to_act(user=request.user, alert_id=alert_id, perm=ALERT_CHANGE_PERM)
    form = AlertNoteForm(request.POST)
    run, done = STEPS[step]
    if not form.is_valid():
        errors = [message for messages in form.errors.values() for message in messages]
        return _refused_page(request, alert, step=step, status=400, errors=errors, note=request.POST.get("note", ""))
    note = form.cleaned_data["note"]
    try:
        run(alert, request.user, note)
    except AlertTransitionError as error:
        alert = alert_get_for(user=request.user, alert_id=alert_id, with_evidence=False)  # its status now
        return _refused_page(request, alert, step=step, status=409, errors=error.messages, note=note)
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
