"""The case workspace in the browser: the case page, the steps taken from it (each through the case
services), opening a case from the alert page, the supervisors' review of security concerns, and
a tenant admin's own playbooks.

Every case comes through desk.selectors.case_get_for / case_get_to_act: 404 for one the user cannot
see, 403 for a role that sees but may not act. A step that is refused shows the page again with its
message (400 bad input, 403 the reveal rule, 409 the case's state); a step that succeeds goes back to
the page (post/redirect/get).
"""

from dataclasses import dataclass
from datetime import datetime
from html import escape as html_escape
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.forms import form_errors_add
from accounts.selectors import bpo_admin_has_perm, tenant_ids_with_perm, user_has_tenant_perm
from alerts.models import AlertType
from alerts.notifications.models import Purpose
from alerts.selectors import alert_get_for, staff_get_by_username
from audit.decorators import audit_shown, shows_data
from audit.selectors import AUDIT_VIEW_PERM
from desk.action_services import (
    WEBHOOK_TEST_PERM,
    ActionRefused,
    action_approve,
    action_release_now,
    action_request,
    action_settings_knowledge_set,
    tenant_webhook_test,
)
from desk.actions import ACTIONS, CONTACT_FIELD_WORDS
from desk.models import (
    ACTION_PENDING_STATES,
    ActionState,
    CaseOpenedVia,
    CaseOutcome,
    CaseStatus,
    ConcernKind,
    PlaybookOverride,
    RevealField,
    RevealReason,
    VerificationMethod,
    VerificationState,
)
from desk.playbooks import NEVER_ASK, PLAYBOOKS, VERIFY
from desk.selectors import (
    CASE_CHANGE_PERM,
    CASE_SUPERVISE_PERM,
    PLAYBOOK_EDIT_PERM,
    InvalidPositionError,
    PendingActions,
    TimelineItem,
    TimelinePosition,
    action_settings_for,
    case_action_get,
    case_actions,
    case_actions_pending,
    case_alert_summary,
    case_alerts_for,
    case_checklists,
    case_get_for,
    case_get_to_act,
    case_is_verified,
    case_playbook_checks,
    case_reveals_active,
    case_shared_with,
    case_timeline_page,
    case_verification,
    case_verifications,
    concern_can_read,
    concern_get_for,
    concern_list_for,
    customer_fields_clear,
    knowledge_step_choices,
    playbook_checklist,
)
from desk.services import (
    CaseConflict,
    CaseNotVisible,
    RevealRefused,
    case_claim,
    case_close,
    case_note_add,
    case_open,
    case_reveal,
    case_share,
    case_status_set,
    case_unshare,
    concern_raise,
    concern_review,
    playbook_override_clear,
    playbook_override_set,
    playbook_step_check,
)
from desk.verification import (
    CHANNEL_WORDS,
    MAX_ATTEMPTS,
    KnowledgeUnavailable,
    VerificationConflict,
    VerificationThrottled,
    knowledge_questions_for,
    method_label,
    verification_callback_record,
    verification_check,
    verification_knowledge_check,
    verification_request,
)
from desk.views import _alert_page, _device, _event_type_label, _place

# --- the forms of the page's steps --------------------------------------------------------------------


class NoteForm(forms.Form):
    body = forms.CharField(max_length=2000, strip=True, label="Note")


class StatusForm(forms.Form):
    status = forms.ChoiceField(
        choices=[(CaseStatus.OPEN, "Open"), (CaseStatus.WAITING_ON_CUSTOMER, "Waiting on the customer")]
    )


class CloseForm(forms.Form):
    outcome = forms.ChoiceField(choices=[("", "Choose an outcome"), *CaseOutcome.choices])
    note = forms.CharField(max_length=500, required=False, strip=True)


class RevealForm(forms.Form):
    field = forms.ChoiceField(choices=RevealField.choices, label="Field")
    reason_code = forms.ChoiceField(choices=[("", "Choose a reason"), *RevealReason.choices], label="Reason")
    reason = forms.CharField(max_length=500, strip=True, label="Why, in your words")


class VerificationForm(forms.Form):
    channel = forms.ChoiceField(
        choices=[("sms", "SMS on file"), ("email", "Email on file"), ("voice", "Call to the phone on file")],
        label="Send a one-time code by",
    )


class CodeForm(forms.Form):
    code = forms.CharField(max_length=12, strip=True, label="Code the customer reads out")


class CallbackForm(forms.Form):
    note = forms.CharField(max_length=500, strip=True, required=False, label="Note on the callback")


class ActionForm(forms.Form):
    action = forms.ChoiceField(choices=[(key, kind.label) for key, kind in ACTIONS.items()])
    app = forms.CharField(max_length=100, required=False, strip=True, label="App id (revoke an app)")
    field = forms.ChoiceField(choices=[("", "—"), ("email", "Email"), ("phone", "Phone")], required=False)


class ApproveForm(forms.Form):
    action_id = forms.UUIDField()
    reason = forms.CharField(max_length=500, strip=True, label="Why you approve it")


class ConcernForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[
            (ConcernKind.SOCIAL_ENGINEERING, "Social engineering"), (ConcernKind.PHISHING, "Phishing"),
            (ConcernKind.OTHER, "Something else"),
        ],
        label="What it looks like",
    )  # fmt: skip
    note = forms.CharField(max_length=1000, required=False, strip=True, label="What happened")


class CheckForm(forms.Form):
    alert_type = forms.ChoiceField(choices=AlertType.choices)
    step = forms.CharField(max_length=40)


class ShareForm(forms.Form):
    username = forms.CharField(max_length=150, strip=True, label="Specialist's username")


# --- the case page ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineRow:
    at: datetime
    kind: str  # the badge: Event, Alert, Case, Note, Reveal, Playbook, Concern
    title: str
    who: str = ""
    detail: str = ""
    quote: str = ""
    link: str = ""

    def html(self) -> str:
        """The row's <li>, escaped: built here rather than in the template, where its tags and date
        filters cost a page of 25 rows several milliseconds (bench/case_page.py). The same markup.
        Escaped with the standard library's html.escape, as Django's escape does, without its lazy
        wrapper (format_html per part cost as much as the template)."""
        local = timezone.localtime(self.at)
        title = _e(self.title)
        if self.link:
            title = f'<a href="{_e(self.link)}">{title}</a>'
        lines = [
            f'<li class="timeline-item kind-{_e(self.kind.lower())}">',
            f'<time datetime="{local.isoformat()}">{local:%Y-%m-%d %H:%M:%S}</time>',
            f'<span class="badge kind-badge">{_e(self.kind)}</span>',
            f'<span class="timeline-title">{title}</span>',
        ]
        if self.who:
            lines.append(f'<span class="muted small">· {_e(self.who)}</span>')
        if self.detail:
            lines.append(f'<span class="muted small">· {_e(self.detail)}</span>')
        if self.quote:
            lines.append(f'<blockquote class="note">{_e(self.quote)}</blockquote>')
        lines.append("</li>")
        return mark_safe("\n".join(lines))  # noqa: S308 (every value escaped above)


def _e(value) -> str:
    return html_escape(str(value))


def _alert_rows_html(alerts) -> list[str]:
    """The case's alerts as <li> rows (the same markup as a template loop, without its cost)."""
    url = reverse("desk:alert_detail", args=[0])[: -len("0/")]
    return [
        mark_safe(  # noqa: S308 (every value escaped)
            f'<li><a href="{_e(url)}{alert.pk}/">{_e(alert.get_type_display())} #{alert.pk}</a>\n'
            f'<span class="badge severity-{_e(alert.severity)}">{_e(alert.get_severity_display())}</span>\n'
            f'<span class="muted small">{_e(alert.get_status_display())} · '
            f"{timezone.localtime(alert.first_seen_at):%Y-%m-%d %H:%M}</span>\n"
            f'<span class="small">{_e(alert.reason)}</span></li>'
        )
        for alert in alerts
    ]


def _verification_rows_html(verifications) -> list[str]:
    """The case's latest verification attempts as <li> rows (as _alert_rows_html)."""
    rows = []
    for v in verifications:
        to = f" to {_e(v.recipient_masked)}" if v.recipient_masked else ""
        wrong = f" · {v.attempts} wrong" if v.attempts else ""
        rows.append(
            mark_safe(  # noqa: S308 (every value escaped)
                f"<li>{_e(v.get_method_display())}{to} · {_e(v.get_state_display())}{wrong} · "
                f"{_e(v.requested_by.username)}, {timezone.localtime(v.created_at):%H:%M}</li>"
            )
        )
    return rows


_KIND_LABELS = {
    "event": "Account", "alert": "Alert", "change": "Case", "note": "Note", "reveal": "Reveal", "check": "Playbook",
    "concern": "Concern", "notification": "Message",
}  # fmt: skip
# The steps of the case's history that are verification attempts and account actions: their badge.
_VERIFICATION_EVENTS = {
    "verification_requested", "verification_refused", "verification_wrong_code", "verification_expired", "verified",
}  # fmt: skip
_VERIFICATION_REFUSALS = {
    "in_progress": "another verification of this customer is in progress",
    "throttled": "too many codes were sent to this customer lately",
}
_ACTION_REFUSALS = {
    "not_verified": "the customer is not verified", "not_strongly_verified": "the customer is not strongly verified",
}  # fmt: skip


def _verification_title(event: str, meta: dict) -> tuple[str, str]:
    """(title, detail) of a verification attempt (desk.verification's case records)."""
    if event == "verification_requested":
        channel = meta.get("channel", "")
        if meta.get("method") == VerificationMethod.PUSH_MATCH:
            title = "Number to match sent to the app"
        else:
            title = f"Code sent by {CHANNEL_WORDS.get(channel, channel)} to {meta.get('to', '')} on file"
        expires = parse_datetime(meta.get("expires_at") or "")
        return title, f"works until {timezone.localtime(expires):%H:%M}" if expires else ""
    if event == "verification_refused":
        why = meta.get("why", "")
        return f"Verification refused: {_VERIFICATION_REFUSALS.get(why, why)}", ""
    if event == "verification_wrong_code":
        if meta.get("failed"):
            return "Verification failed: too many wrong codes", f"{meta.get('attempts')} wrong"
        return f"Wrong code ({meta.get('attempts')} of {MAX_ATTEMPTS} tries)", ""
    if event == "verification_expired":
        return "The code expired before it was entered", ""
    method = f"{meta.get('method', '')}_{meta.get('channel', '')}".rstrip("_")
    strength = meta.get("strength", "")
    return f"Verified by {method_label(method)}", f"{strength} verification" if strength else ""


# Steps of the notice before a contact change takes effect (desk.action_services): their titles.
_NOTICE_STEPS = {
    "action_customer_told": "the contacts on file told first; it goes when the hold ends",
    "action_hold_ended": "hold over, sent to the client",
    "action_hold_overridden": "sent before the end of the hold",
    "action_put_on_hold": "on hold: the customer answered “No” to the notice",
    "action_disowned_too_late": "the customer answered “No” to the notice, after it was sent",
    "action_disowned_cancelled": "the customer answered “No” to the notice; it had been cancelled, never sent",
    "action_cancelled": "cancelled, never sent",
}
# Steps taken on the customer's word rather than by staff.
_CUSTOMER_STEPS = {"action_put_on_hold", "action_disowned_too_late", "action_disowned_cancelled"}


def _action_title(event: str, meta: dict, changes: dict) -> tuple[str, str]:
    """(title, detail) of a step of an account action (desk.action_services' case records)."""
    kind = ACTIONS.get(meta.get("action_kind", ""))
    label = kind.label if kind is not None else meta.get("action_kind", "Account action")
    if event in _NOTICE_STEPS:
        field = meta.get("notice_field", "")  # the contact the notice told the customer is changing
        detail = f"the notice names {CONTACT_FIELD_WORDS[field]}" if field in CONTACT_FIELD_WORDS else ""
        return f"{label}: {_NOTICE_STEPS[event]}", detail
    if event == "action_requested":
        waits = (changes.get("state") or {}).get("after") == ActionState.PENDING_APPROVAL
        detail = f"allowed as {meta['allowed_as']}" if meta.get("allowed_as") else ""
        state = "waiting for a supervisor's approval" if waits else "requested"
        return f"{label}: {state}", detail
    if event == "action_refused":
        return f"{label}: refused", _ACTION_REFUSALS.get(meta.get("why", ""), meta.get("why", ""))
    if event == "action_approved":
        return f"{label}: approved", ""
    if event == "action_sent":
        return f"{label}: sent to the client", "signed webhook"
    if event == "action_confirmed":
        return f"{label}: confirmed by the client", f"after {meta.get('attempts')} attempt(s)"
    return f"{label}: failed", f"{meta.get('error', '')} after {meta.get('attempts')} attempts"


def _change_title(record) -> tuple[str, str]:
    """(title, who) of one line of the case's own history (desk.services._case_record)."""
    meta, changes = record.metadata or {}, record.changes or {}
    who = record.actor_label or "AlertDesk"
    event = meta.get("event")
    if event == "opened":
        via = (changes.get("opened_via") or {}).get("after", "")
        return f"Case opened ({CaseOpenedVia(via).label.lower() if via in CaseOpenedVia.values else via})", who
    if event == "customer_disowned":
        return f"The customer answered “No, it wasn't me” to alert #{meta.get('alert')}", "The customer"
    if event == "alert_added":
        return f"Alert #{meta.get('alert')} added to the case", who
    if event == "status":
        status = changes.get("status") or {}
        after = status.get("after", "")
        title = f"Status: {CaseStatus(after).label if after in CaseStatus.values else after}"
        outcome = (changes.get("outcome") or {}).get("after")
        if outcome in CaseOutcome.values:
            title += f" ({CaseOutcome(outcome).label})"
        return title, who
    if event == "claimed":
        return "Claimed the case", who
    if event in ("shared", "unshared"):
        shared = changes.get("shared_with") or {}
        if event == "shared":
            return f"Shared the case with {shared.get('after')}", who
        return f"Took the case back from {shared.get('before')}", who
    return "Updated", who


def _timeline_row(item: TimelineItem) -> TimelineRow:
    obj, kind = item.obj, _KIND_LABELS[item.kind]
    if item.kind == "event":
        detail = " · ".join(p for p in (_place(obj), _device(obj.context)) if p)
        return TimelineRow(item.at, kind, _event_type_label(obj.type), "The customer's account", detail)
    if item.kind == "alert":
        detail = f"{obj.get_severity_display()} · {obj.get_status_display()}"
        link = reverse("desk:alert_detail", args=[obj.pk])
        return TimelineRow(item.at, kind, f"{obj.get_type_display()} #{obj.pk} raised", "", detail, obj.reason, link)
    if item.kind == "change":
        event, meta = (obj.metadata or {}).get("event", ""), obj.metadata or {}
        who = obj.actor_label or "AlertDesk"
        if event in _VERIFICATION_EVENTS:
            title, detail = _verification_title(event, meta)
            return TimelineRow(item.at, "Verification", title, who, detail)
        if event.startswith("action_"):
            title, detail = _action_title(event, meta, obj.changes or {})
            by_customer = event in _CUSTOMER_STEPS or meta.get("allowed_as") == "customer's answer"
            return TimelineRow(item.at, "Action", title, "The customer" if by_customer else who, detail, obj.reason)
        title, who = _change_title(obj)
        return TimelineRow(item.at, kind, title, who, quote=obj.reason)
    if item.kind == "notification":
        what = "Verification code" if obj.purpose == Purpose.VERIFICATION else obj.get_purpose_display()
        title = f"{obj.get_channel_display()} to the customer: {obj.get_state_display().lower()}"
        about = f"alert #{obj.alert_id}" if obj.alert_id else ""
        detail = " · ".join(p for p in (what, about, obj.recipient_masked) if p)
        return TimelineRow(item.at, kind, title, "AlertDesk", detail)
    if item.kind == "note":
        return TimelineRow(item.at, kind, "Note", obj.author.username, quote=obj.body)
    if item.kind == "reveal":
        detail = f"{obj.get_reason_code_display()} · shown until {timezone.localtime(obj.expires_at):%H:%M}"
        return TimelineRow(item.at, kind, f"Revealed the {obj.get_field_display().lower()}", obj.actor.username,
                           detail, obj.reason_text)  # fmt: skip
    if item.kind == "check":
        label = AlertType(obj.alert_type).label if obj.alert_type in AlertType.values else obj.alert_type
        return TimelineRow(item.at, kind, f"Checked: {obj.step_text}", obj.checked_by.username, label)
    detail = obj.get_status_display()
    return TimelineRow(
        item.at,
        kind,
        obj.get_kind_display(),
        obj.raised_by.username if obj.raised_by_id else "AlertDesk (automatic)",
        detail,
        obj.note,
    )


# The steps whose refusals show in their own section of the page, next to their forms (the others
# show in the actions column).
VERIFICATION_STEPS = ("verification", "verification_check", "callback")
ACTION_STEPS = ("action", "approve")


@dataclass(frozen=True)
class ChecklistView:
    checklist: object
    steps: list  # [(step, check or None)]
    done: int


def _case_page(request, case, *, status=200, failed_step="", errors=(), forms_bound=None):
    """Render the case page; after a refused step, with its message and what the user typed."""
    now = timezone.now()
    may_act = user_has_tenant_perm(user=request.user, tenant=case.tenant, perm=CASE_CHANGE_PERM)
    may_supervise = user_has_tenant_perm(user=request.user, tenant=case.tenant, perm=CASE_SUPERVISE_PERM)
    try:
        before = TimelinePosition.decode(request.GET["cursor"]) if request.GET.get("cursor") else None
    except InvalidPositionError:
        raise Http404("Invalid cursor") from None
    summary = case_alert_summary(case=case)  # read once: the alerts' count, types and first time
    alerts, alerts_total = case_alerts_for(case=case, summary=summary)
    checks = case_playbook_checks(case=case)
    checklists = []
    for checklist in case_checklists(case=case, summary=summary):
        steps = [(step, checks.get((checklist.alert_type, step.key))) for step in checklist.steps]
        checklists.append(ChecklistView(checklist, steps, sum(1 for _, check in steps if check is not None)))
    reveals = case_reveals_active(case=case, user=request.user, now=now)
    clear = customer_fields_clear(customer_id=case.customer_id, fields=list(reveals)) if reveals else {}
    items, position = case_timeline_page(case=case, before=before, summary=summary)
    actions = case_actions(case=case)
    for account_action in actions:
        kind = ACTIONS.get(account_action.action)
        account_action.label = kind.describe(account_action.params) if kind is not None else account_action.action
    pending_listed = sum(1 for a in actions if a.state in ACTION_PENDING_STATES)
    # Only a case with one asks (the newest pending action is always among those listed).
    pending = case_actions_pending(case=case) if pending_listed else PendingActions(0, [])
    for group in pending.groups:
        kind = ACTIONS.get(group["action"])
        group["label"] = kind.describe(group["params"]) if kind is not None else group["action"]
        group["state_label"] = ActionState(group["state"]).label
    base = reverse("desk:case_detail", args=[case.pk])
    audit_shown(request).object(case)
    if alerts:
        audit_shown(request).objects(alerts)
    if clear:  # a clear value shown again (within its reveal's minutes) is recorded as such
        audit_shown(request).page("desk.case_revealed", tenant=case.tenant, ids=[case.pk], fields=sorted(clear))
    bound = forms_bound or {}
    context = {
        "case": case,
        "now": now,
        "rendered_at": f"{now.timestamp():.6f}",  # changes committed before it are on the page (case.js)
        "contacts": {"email": case.customer.email_masked, "phone": case.customer.phone_masked},
        "revealed": [
            {"field": f, "label": RevealField(f).label, "value": clear[f], "until": reveals[f].expires_at}
            for f in RevealField.values
            if f in clear
        ],
        "verified": case_is_verified(case, now=now),
        "verification": case_verification(case, now=now),
        "verification_label": method_label(case.verification_method) if case.verification_method else "",
        "verifications": _verification_rows_html(case_verifications(case=case)),
        "knowledge_questions": knowledge_questions_for(tenant_id=case.tenant_id) if may_act else [],
        "actions": actions,
        # What resolving would cancel (desk.action_services.actions_cancel_for_resolved_case): all of it,
        # counted by kind and state (the list above shows CASE_PENDING_SHOWN of them at most).
        "actions_pending": pending,
        "actions_pending_hidden": pending.total - pending_listed,
        "action_kinds": ACTIONS,
        "verification_form": bound.get("verification") or VerificationForm(),
        "code_form": bound.get("verification_check") or CodeForm(),
        "callback_form": bound.get("callback") or CallbackForm(),
        "action_form": bound.get("action") or ActionForm(),
        "may_act": may_act and case.status != CaseStatus.RESOLVED,
        "may_note": may_act,
        "may_supervise": may_supervise,
        "alerts": _alert_rows_html(alerts),
        "alerts_hidden": alerts_total - len(alerts),
        "checklists": checklists,
        "check_url": reverse("desk:case_check", args=[case.pk]),  # once, not for each step
        "approve_url": reverse("desk:case_action_approve", args=[case.pk]),
        "timeline": [_timeline_row(item).html() for item in items],
        "older_url": f"{base}?{urlencode({'cursor': position.encode()})}#timeline" if position else "",
        "newest_url": f"{base}#timeline" if before is not None else "",
        "shared_with": case_shared_with(case=case) if may_supervise else [],
        "audit_url": reverse("audit:target_history", args=["desk.case", case.pk])
        if user_has_tenant_perm(user=request.user, tenant=case.tenant, perm=AUDIT_VIEW_PERM)
        else "",
        "failed_step": failed_step,
        "verification_steps": VERIFICATION_STEPS,
        "action_steps": ACTION_STEPS,
        "page_steps": (*VERIFICATION_STEPS, *ACTION_STEPS, "reveal"),  # their errors show in their section
        "step_errors": list(errors),
        "note_form": bound.get("note") or NoteForm(),
        "status_form": StatusForm(initial={"status": case.status}),
        "close_form": bound.get("close") or CloseForm(),
        "reveal_form": bound.get("reveal") or RevealForm(),
        "concern_form": bound.get("concern") or ConcernForm(),
        "share_form": bound.get("share") or ShareForm(),
    }
    response = render(request, "desk/case_detail.html", context, status=status)
    if clear:  # a revealed value must not outlive its minutes in a cache or the browser's history
        response["Cache-Control"] = "no-store"
    return response


@require_GET
@shows_data
def case_detail(request, case_id: int):
    return _case_page(request, case_get_for(user=request.user, case_id=case_id))


def _refused(request, case, *, step, status, errors, bound=None):
    response = _case_page(request, case, status=status, failed_step=step, errors=errors, forms_bound=bound)
    audit_shown(request).record(request)  # @shows_data records 2xx answers; this refusal shows the case too
    return response


def _form_errors(form) -> list[str]:
    return [message for field_errors in form.errors.values() for message in field_errors]


def _step(request, case_id, step, run, *, form_class=None, perm=CASE_CHANGE_PERM, done="", anchor=""):
    """One step from the page: the case through case_get_to_act, the form, then `run(case, data)`."""
    case = case_get_to_act(user=request.user, case_id=case_id, perm=perm)
    form = form_class(request.POST) if form_class is not None else None
    bound = {step: form} if form is not None else None
    if form is not None and not form.is_valid():
        return _refused(request, case, step=step, status=400, errors=_form_errors(form), bound=bound)
    try:
        message = run(case, form.cleaned_data if form is not None else {}) or done
    except ValidationError as error:
        return _refused(request, case, step=step, status=400, errors=error.messages, bound=bound)
    except (RevealRefused, CaseNotVisible) as error:
        return _refused(request, case, step=step, status=403, errors=[str(error)], bound=bound)
    except CaseConflict as error:
        case = case_get_for(user=request.user, case_id=case_id)  # its state now
        return _refused(request, case, step=step, status=409, errors=[error.message], bound=bound)
    messages.success(request, message)
    return redirect(reverse("desk:case_detail", args=[case.pk]) + anchor)


@require_POST
@shows_data
def case_note_view(request, case_id: int):
    return _step(
        request, case_id, "note", lambda case, data: case_note_add(actor=request.user, case=case, body=data["body"]),
        form_class=NoteForm, done="Note added.", anchor="#timeline",
    )  # fmt: skip


@require_POST
@shows_data
def case_claim_view(request, case_id: int):
    return _step(request, case_id, "claim", lambda case, data: case_claim(actor=request.user, case=case),
                 done="The case is yours.")  # fmt: skip


@require_POST
@shows_data
def case_status_view(request, case_id: int):
    def run(case, data):
        case = case_status_set(actor=request.user, case=case, status=data["status"])
        return f"The case is {case.get_status_display().lower()}."

    return _step(request, case_id, "status", run, form_class=StatusForm)


@require_POST
@shows_data
def case_close_view(request, case_id: int):
    def run(case, data):
        if not data["outcome"]:
            raise ValidationError({"outcome": "Choose how the case ends."})
        case_close(actor=request.user, case=case, outcome=data["outcome"], note=data["note"])
        return "Case resolved."

    return _step(request, case_id, "close", run, form_class=CloseForm)


@require_POST
@shows_data
def case_reveal_view(request, case_id: int):
    def run(case, data):
        if not data["reason_code"]:
            raise ValidationError({"reason_code": "Choose a reason from the list."})
        case_reveal(
            actor=request.user, case=case, field=data["field"], reason_code=data["reason_code"],
            reason_text=data["reason"],
        )  # fmt: skip
        return f"The {RevealField(data['field']).label.lower()} is shown for a few minutes; the reveal is recorded."

    return _step(request, case_id, "reveal", run, form_class=RevealForm, anchor="#customer")


def _as_conflict(error) -> CaseConflict:
    return CaseConflict(error.message)


@require_POST
@shows_data
def case_verification_view(request, case_id: int):
    def run(case, data):
        try:
            verification = verification_request(actor=request.user, case=case, method="otp", channel=data["channel"])
        except (VerificationConflict, VerificationThrottled) as error:
            raise _as_conflict(error) from None
        return f"Code sent to {verification.recipient_masked}: ask the customer to read it out."

    return _step(request, case_id, "verification", run, form_class=VerificationForm, anchor="#verification")


@require_POST
@shows_data
def case_verification_check_view(request, case_id: int):
    def run(case, data):
        try:
            result = verification_check(actor=request.user, case=case, code=data["code"])
        except VerificationConflict as error:
            raise _as_conflict(error) from None
        if not result.verified:  # recorded already (the service committed): say why
            raise ValidationError(result.message)
        return "The caller is verified as the customer."

    return _step(request, case_id, "verification_check", run, form_class=CodeForm, anchor="#verification")


@require_POST
@shows_data
def case_callback_view(request, case_id: int):
    def run(case, data):
        try:
            verification_callback_record(actor=request.user, case=case, note=data["note"])
        except VerificationConflict as error:
            raise _as_conflict(error) from None
        return "Callback recorded: the caller is verified."

    return _step(request, case_id, "callback", run, form_class=CallbackForm, anchor="#verification")


@require_POST
@shows_data
def case_knowledge_view(request, case_id: int):
    def run(case, data):
        prefix = "answer_"
        answers = {k[len(prefix) :]: v for k, v in request.POST.items() if k.startswith(prefix)}
        try:
            verification = verification_knowledge_check(actor=request.user, case=case, answers=answers)
        except (VerificationConflict, VerificationThrottled, KnowledgeUnavailable) as error:
            raise _as_conflict(error) from None
        if verification.state != VerificationState.VERIFIED:  # recorded already (the service committed)
            raise ValidationError("The answers do not match the client's records.")
        return "The answers match: the caller is verified by knowledge questions (weak)."

    return _step(request, case_id, "knowledge", run, anchor="#verification")


@require_POST
@shows_data
def case_action_view(request, case_id: int):
    def run(case, data):
        params = {"app": data["app"]} if data["action"] == "revoke_app" else {}
        if data["action"] == "change_contact":
            params = {"field": data["field"]}
        try:
            account_action = action_request(actor=request.user, case=case, action=data["action"], params=params)
        except ActionRefused as error:
            raise _as_conflict(error) from None
        if account_action.state == ActionState.PENDING_APPROVAL:
            return f"{ACTIONS[account_action.action].label}: waiting for {account_action.needs}."
        if account_action.state == ActionState.WAITING:
            return f"{ACTIONS[account_action.action].label}: the customer is told first; it goes when the hold ends."
        return f"{ACTIONS[account_action.action].label}: sent to the client."

    return _step(request, case_id, "action", run, form_class=ActionForm, anchor="#actions")


def _supervisor_action_step(request, case_id: int, step: str, service, said) -> object:
    """A supervisor's step on one of the case's actions, with a reason (approve, send now)."""

    def run(case, data):
        account_action = case_action_get(case=case, action_id=data["action_id"])
        try:
            account_action = service(actor=request.user, account_action=account_action, reason=data["reason"])
        except ActionRefused as error:
            raise _as_conflict(error) from None
        return said(account_action)

    return _step(request, case_id, step, run, form_class=ApproveForm, perm=CASE_SUPERVISE_PERM, anchor="#actions")


@require_POST
@shows_data
def case_action_approve_view(request, case_id: int):
    def said(account_action):
        if account_action.state == ActionState.WAITING:
            return "Approved: the customer's contacts on file are told first; it goes to the client when the hold ends."
        return "Approved: sent to the client."

    return _supervisor_action_step(request, case_id, "approve", action_approve, said)


@require_POST
@shows_data
def case_action_release_view(request, case_id: int):
    """A supervisor sends a contact change before its hold ends (desk.action_services.action_release_now)."""
    return _supervisor_action_step(
        request, case_id, "release", action_release_now, lambda _: "Sent to the client before the end of the hold."
    )


@require_POST
@shows_data
def case_concern_view(request, case_id: int):
    def run(case, data):
        concern_raise(actor=request.user, case=case, kind=data["kind"], note=data["note"])
        return "Security concern reported: the client's supervisors have been told."

    return _step(request, case_id, "concern", run, form_class=ConcernForm)


@require_POST
@shows_data
def case_check_view(request, case_id: int):
    def run(case, data):
        playbook_step_check(actor=request.user, case=case, alert_type=data["alert_type"], step_key=data["step"])
        return "Step checked."

    return _step(request, case_id, "check", run, form_class=CheckForm, anchor="#playbook")


@require_POST
@shows_data
def case_share_view(request, case_id: int):
    def run(case, data):
        case_share(actor=request.user, case=case, user=staff_get_by_username(username=data["username"]))
        return f"Shared with {data['username']}."

    return _step(request, case_id, "share", run, form_class=ShareForm, perm=CASE_SUPERVISE_PERM)


@require_POST
@shows_data
def case_unshare_view(request, case_id: int):
    def run(case, data):
        case_unshare(actor=request.user, case=case, user=staff_get_by_username(username=data["username"]))
        return f"No longer shared with {data['username']}."

    return _step(request, case_id, "share", run, form_class=ShareForm, perm=CASE_SUPERVISE_PERM)


@require_POST
@shows_data
def alert_case_open(request, alert_id: int):
    """ "Open case" on the alert page: to the customer's open case (opened if none), or the alert
    page again with why not."""
    alert = alert_get_for(user=request.user, alert_id=alert_id, with_evidence=False)
    if not user_has_tenant_perm(user=request.user, tenant=alert.tenant, perm=CASE_CHANGE_PERM):
        raise PermissionDenied("Your role may not work cases of this client.")
    try:
        case, opened = case_open(actor=request.user, alert=alert)
    except (ValidationError, CaseNotVisible) as error:
        status = 403 if isinstance(error, CaseNotVisible) else 400
        errors = [str(error)] if isinstance(error, CaseNotVisible) else error.messages
        response = _alert_page(request, alert, status=status, failed_step="case", errors=errors)
        audit_shown(request).record(request)
        return response
    messages.success(request, f"Case #{case.pk} opened." if opened else f"Alert added to case #{case.pk}.")
    return redirect("desk:case_detail", case_id=case.pk)


# --- the supervisors' review of security concerns ------------------------------------------------------


class ReviewForm(forms.Form):
    note = forms.CharField(max_length=1000, required=False, strip=True, label="What you found")


@require_GET
@shows_data
def concern_list(request):
    """Security concerns waiting for review in the tenants the user reads them in (404 for others);
    the review form where they review them."""
    if not concern_can_read(user=request.user):
        raise Http404("No such page.")
    concerns = list(concern_list_for(user=request.user)[:100])
    reviewable = set(tenant_ids_with_perm(user=request.user, perm=CASE_SUPERVISE_PERM))
    for concern in concerns:
        concern.reviewable = concern.tenant_id in reviewable
    audit_shown(request).objects(concerns, target_type="desk.securityconcern")
    return render(request, "desk/concern_list.html", {"concerns": concerns, "form": ReviewForm()})


@require_POST
@shows_data
def concern_review_view(request, concern_id: int):
    concern = concern_get_for(user=request.user, concern_id=concern_id)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(_form_errors(form)))
    else:
        concern_review(actor=request.user, concern=concern, note=form.cleaned_data["note"])
        messages.success(request, f"Concern #{concern.pk} marked reviewed.")
    return redirect("desk:concern_list")


# --- a tenant admin's own playbooks ------------------------------------------------------------------


class PlaybookForm(forms.Form):
    _ONE_A_LINE = "One step a line."
    verify = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), label="What the agent verifies", help_text=_ONE_A_LINE
    )
    tell = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, label="What the agent tells", help_text=_ONE_A_LINE
    )
    never_ask = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Also never ask for",
        help_text="Added to the list every playbook keeps (passwords, codes, security answers).",
    )
    customer_steps = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), label="The customer's steps", help_text=_ONE_A_LINE
    )

    FIELDS = ("verify", "tell", "never_ask", "customer_steps")

    def lines(self) -> dict[str, list[str]]:
        return {name: self.cleaned_data.get(name, "").splitlines() for name in self.FIELDS}


def _current_tenant_with(request, perm: str):
    """The tenant the user works in, when their role there carries `perm` (404 otherwise)."""
    tenant = request.tenant
    if not tenant or not user_has_tenant_perm(user=request.user, tenant=tenant, perm=perm):
        raise Http404("No such page.")
    return tenant


def _playbook_tenant(request):
    """The tenant the user works in, when their role there edits its playbooks (404 otherwise)."""
    return _current_tenant_with(request, PLAYBOOK_EDIT_PERM)


@require_GET
@shows_data
def playbook_list(request):
    """The playbooks of the tenant the user works in (a BPO admin before any tenant exists: none)."""
    if request.tenant or not bpo_admin_has_perm(user=request.user, perm=PLAYBOOK_EDIT_PERM):
        tenant = _playbook_tenant(request)
    else:
        tenant = None
    own = set(PlaybookOverride.objects.filter(tenant=tenant).values_list("alert_type", flat=True)) if tenant else set()
    rows = [{"type": t, "label": p.label, "own": t in own} for t, p in PLAYBOOKS.items()] if tenant else []
    audit_shown(request).page("desk.playbooks", tenant=tenant)
    return render(request, "desk/playbook_list.html", {"tenant": tenant, "rows": rows})


@require_http_methods(["GET", "POST"])
@shows_data
def playbook_edit(request, alert_type: str):
    tenant = _playbook_tenant(request)
    if alert_type not in PLAYBOOKS:
        raise Http404("No such alert type.")
    checklist = playbook_checklist(tenant_id=tenant.pk, alert_type=alert_type)
    status = 200
    if request.method == "POST" and request.POST.get("action") == "reset":
        playbook_override_clear(actor=request.user, tenant=tenant, alert_type=alert_type)
        messages.success(request, "Back to the default playbook.")
        return redirect("desk:playbook_edit", alert_type=alert_type)
    if request.method == "POST":
        form = PlaybookForm(request.POST)
        if form.is_valid():
            try:
                playbook_override_set(actor=request.user, tenant=tenant, alert_type=alert_type, **form.lines())
            except ValidationError as error:
                for field, field_errors in error.message_dict.items():
                    for message in field_errors:
                        form.add_error(field if field in PlaybookForm.FIELDS else None, message)
            else:
                messages.success(request, "Playbook saved: agents see it on their next case.")
                return redirect("desk:playbook_edit", alert_type=alert_type)
        status = 400
    else:
        defaults = PLAYBOOKS[alert_type].checklist()
        extra_never = [n for n in checklist.never_ask if n not in NEVER_ASK]
        form = PlaybookForm(
            initial={
                "verify": "\n".join(s.text for s in checklist.steps if s.kind == VERIFY),
                "tell": "\n".join(s.text for s in checklist.steps if s.kind != VERIFY),
                "never_ask": "\n".join(extra_never if checklist.tenant_own else []),
                "customer_steps": "\n".join(checklist.customer_steps or defaults.customer_steps),
            }
        )
    audit_shown(request).page("desk.playbook", tenant=tenant, alert_type=alert_type)
    context = {"tenant": tenant, "checklist": checklist, "form": form, "label": AlertType(alert_type).label}
    response = render(request, "desk/playbook_edit.html", context, status=status)
    if status != 200:
        audit_shown(request).record(request)
    return response


# --- a tenant admin's account-action webhook -------------------------------------------------------


def _webhook_tenant(request):
    """The tenant the user works in, when they are its admin (404 otherwise: deny by default)."""
    return _current_tenant_with(request, WEBHOOK_TEST_PERM)


class KnowledgePolicyForm(forms.Form):
    allows = forms.MultipleChoiceField(
        choices=knowledge_step_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Knowledge questions alone allow",
        help_text="Never a high-risk action: those always need a one-time code, number matching or a callback.",
    )


def _action_settings_page(request, tenant, *, knowledge_form=None, status=200):
    settings = action_settings_for(tenant_id=tenant.pk) if tenant else None
    if tenant and knowledge_form is None:
        knowledge_form = KnowledgePolicyForm(initial={"allows": list(settings.knowledge_allows or [])})
    audit_shown(request).page("desk.actionsettings", tenant=tenant)
    context = {"tenant": tenant, "settings": settings, "kinds": ACTIONS.values(), "knowledge_form": knowledge_form}
    response = render(request, "desk/actionsettings_detail.html", context, status=status)
    if status != 200:  # shows_data records successful answers; this page was shown all the same
        audit_shown(request).record(request)
    return response


@require_http_methods(["GET", "POST"])
@shows_data
def action_webhook(request):
    """Where the client's account actions go (the URL; the secret only as "set"), the cooling-off
    window, "Send a test", and what knowledge questions alone may unlock: a POST sets that
    (action_settings_knowledge_set: low-risk kinds and reveal, audited); bad input shows the page
    again (400) and changes nothing."""
    if request.method == "POST" or request.tenant or not bpo_admin_has_perm(user=request.user, perm=WEBHOOK_TEST_PERM):
        tenant = _webhook_tenant(request)
    else:  # a BPO admin before any client tenant exists
        tenant = None
    if request.method == "GET":
        return _action_settings_page(request, tenant)
    form = KnowledgePolicyForm(request.POST)
    if form.is_valid():
        try:
            action_settings_knowledge_set(tenant=tenant, allows=form.cleaned_data["allows"], actor=request.user)
        except ValidationError as error:
            form_errors_add(form, error)
        else:
            messages.success(request, "Saved: what knowledge questions alone allow.")
            return redirect("desk:action_webhook")
    return _action_settings_page(request, tenant, knowledge_form=form, status=400)


_TEST_HINT_OTHER = "The client's endpoint could not be reached, or failed: check it with them."
_TEST_HINTS = {
    "webhook_not_configured": "No webhook is set for this client: an operator sets it with manage.py tenant_webhook.",
    "http_401": "The client refused the signature: give them the current secret (tenant_webhook makes a new one).",
    "http_403": "The client refused the signature: give them the current secret (tenant_webhook makes a new one).",
    "http_404": "Nothing answers at that URL: check it with the client.",
}


@require_POST
def action_webhook_test(request):
    """Shows no data (back to the page); the test itself is recorded by tenant_webhook_test."""
    tenant = _webhook_tenant(request)
    result = tenant_webhook_test(actor=request.user, tenant=tenant)
    if result.ok:
        messages.success(
            request, f"Test sent: the client answered {result.status} in {result.milliseconds} ms. "
            "The URL and the signature work.",
        )  # fmt: skip
    else:
        what = f"answered {result.status}" if result.status else result.outcome.removeprefix("error_")
        if result.outcome == "webhook_not_configured":
            what = "not sent"
        hint = _TEST_HINTS.get(result.outcome, _TEST_HINT_OTHER)
        messages.error(request, f"Test failed ({what}, {result.milliseconds} ms). {hint}")
    return redirect("desk:action_webhook")
