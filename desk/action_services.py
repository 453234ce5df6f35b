"""Writes of account actions (issue 11, "Account actions through the client's systems" and
"Dangerous combinations are refused by the product"): request, approve, deliver as the contract's
signed webhook, and the tenant's webhook settings. Audited on the case in each transaction; the
webhook goes out from a Celery task after commit (desk.tasks.account_action_send_task).

The policy, in one place (the kinds declare their risk and group: desk.actions):
- no action for a customer who is not verified in this case, unless a supervisor of the tenant asks
  (ActionRefused, a 409); a contact change asked for before verification also raises a
  social-engineering flag, as the issue says;
- a high-risk kind needs strong verification (never knowledge questions alone) AND the approval
  of a supervisor who is not the one who asked (two people, a database constraint too);
- a contact change and a credential or MFA reset of one customer within the tenant's cooling-off
  window (ActionSettings.cooling_off_hours, 24 by default) wait for a supervisor's approval, with
  a reason, whatever their own risk;
- a kind that tells the customer first (`notice_first`: the contact change) is not sent when it is
  requested or approved: the contacts on file get a notice with a "Was this you?" link, and the
  action waits (state `waiting`) for the tenant's hold (ActionSettings.notice_hold_minutes, 10 by
  default) unless a supervisor sends it sooner with a reason; the customer's "No" puts it on hold
  (`on_hold`, final: the agent asks again once the case is understood), audited on the case, and the
  tenant's supervisors hear of it live (a desk-raised concern).

A customer's own "No, it wasn't me" to an alert asks for the actions the tenant enabled
(ActionSettings.customer_no_actions: low-risk kinds only), sent at once: the contact on file that
answered is the customer, and signing the account out everywhere is what they need (Okta's "Report
suspicious activity"). No verification and no cooling-off rule apply to these: both guard against a
caller talking an agent into a change, not against the customer securing their own account.
"""

import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, User
from accounts.selectors import user_has_tenant_perm
from alerts.notifications.channels import signed_headers
from alerts.notifications.services import action_notice_plan
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record
from desk.actions import ACTIONS, CONTACT, CREDENTIAL
from desk.models import (
    ACTION_PENDING_STATES,
    OPEN_CASE_STATUSES,
    AccountAction,
    ActionRequestedVia,
    ActionSettings,
    ActionState,
    Case,
    VerificationStrength,
)
from desk.selectors import (
    CASE_SUPERVISE_PERM,
    action_settings_for,
    case_is_verified,
    case_strength,
    knowledge_allows,
    knowledge_step_choices,
)
from desk.services import _case_announce, _case_record, concern_raise_by_desk
from desk.verification import method_strength

APPROVAL_REASON_MAX_LENGTH = AccountAction._meta.get_field("approval_reason").max_length
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_TEST_PERM = "accounts.change_tenant"  # role: a tenant admin (the client's settings)


class ActionRefused(Exception):  # noqa: N818 (answered as a 409)
    """The policy refuses this action now (not verified, not strongly enough, resolved case)."""

    @property
    def message(self) -> str:
        return str(self.args[0])


def _send_on_commit(account_action: AccountAction) -> None:
    from desk.tasks import account_action_send_task

    transaction.on_commit(lambda pk=account_action.pk: account_action_send_task.delay(pk))


def _dispatch(account_action: AccountAction, *, case: Case, actor: User | None, now: datetime) -> None:
    """An action just allowed (requested, or approved): sent once this commits, or, for a kind that
    tells the customer first, the notice planned and the action waiting for the tenant's hold."""
    kind = ACTIONS[account_action.action]
    if not kind.notice_first:
        _send_on_commit(account_action)
        return
    minutes = action_settings_for(tenant_id=case.tenant_id).notice_hold_minutes
    field = kind.notice_field(account_action.params)
    told = action_notice_plan(
        tenant_id=case.tenant_id, customer_id=account_action.customer_id, reference=account_action.uuid,
        field=field, now=now,
    )  # fmt: skip
    before = account_action.state
    account_action.state, account_action.hold_until, account_action.updated_at = (
        ActionState.WAITING, now + timedelta(minutes=minutes), now,
    )  # fmt: skip
    account_action.save(update_fields=["state", "hold_until", "updated_at"])
    _case_record(
        case, actor=actor, event="action_customer_told",
        changes=audit_diff({"state": before}, {"state": ActionState.WAITING}),
        account_action=str(account_action.uuid), action_kind=account_action.action, notifications=told,
        hold_minutes=minutes, hold_until=account_action.hold_until.isoformat(),
        **({"notice_field": field} if field else {}),
    )  # fmt: skip
    from desk.tasks import account_action_release_task

    pk, countdown = account_action.pk, minutes * 60 + 1
    transaction.on_commit(lambda: _release_later(account_action_release_task, pk, countdown))


def _release_later(task, pk: int, countdown: int) -> None:
    try:
        task.apply_async((pk,), countdown=countdown)
    except Exception:  # noqa: BLE001 (the broker is down: beat's account-action-holds relay sends it)
        import logging

        logging.getLogger(__name__).warning("could not schedule an account action's hold", extra={"action": pk})


def _cooling_off_clash(*, case: Case, group: str, now: datetime) -> AccountAction | None:
    """An action of the other group (contact vs credential) for this customer within the tenant's
    window, that was not refused or failed: together, the pattern of a help-desk takeover."""
    if group not in (CONTACT, CREDENTIAL):
        return None
    other = CREDENTIAL if group == CONTACT else CONTACT
    hours = action_settings_for(tenant_id=case.tenant_id).cooling_off_hours
    kinds = [k for k, kind in ACTIONS.items() if kind.group == other]
    return (
        AccountAction.objects.filter(
            customer_id=case.customer_id, action__in=kinds, requested_at__gt=now - timedelta(hours=hours)
        )
        .exclude(state=ActionState.FAILED)
        .order_by("-requested_at")
        .first()
    )


def _refusal_record(*, actor: User, case: Case, action: str, why: str) -> None:
    """A refused request is recorded in a transaction of its own (the request's rolls back), and a
    contact change asked for before verification flags the contact as suspected social engineering."""
    with transaction.atomic():
        _case_record(case, actor=actor, event="action_refused", action_kind=action, why=why)
        if ACTIONS[action].group == CONTACT and why == "not_verified":
            concern_raise_by_desk(
                case=case, trigger="contact_change_unverified",
                note="a contact-detail change was asked for before the caller was verified.",
            )  # fmt: skip


def action_request(*, actor: User, case: Case, action: str, params: dict | None = None) -> AccountAction:
    """Ask the client's systems to do `action` on the case's customer's account. Sent at once (after
    commit) when the policy allows it; waits in pending_approval when it needs a supervisor; refused
    with ActionRefused (recorded) when the caller is not verified (strongly, for a high-risk kind)
    and the asker is no supervisor. Malformed input is a ValidationError and records nothing."""
    kind = ACTIONS.get(action) if isinstance(action, str) else None
    if kind is None:
        raise ValidationError({"action": f"Give one of {', '.join(ACTIONS)}."})
    if params is not None and not isinstance(params, dict):
        raise ValidationError({"params": "Give the parameters as an object."})
    clean = kind.params_clean(params or {})
    why = ""
    with transaction.atomic():
        locked = Case.objects.select_for_update().get(pk=case.pk)
        locked.tenant = case.tenant
        if locked.status not in OPEN_CASE_STATUSES:
            raise ActionRefused("This case is resolved: open a new one to act on the account.")
        now = timezone.now()
        supervisor = user_has_tenant_perm(user=actor, tenant=locked.tenant, perm=CASE_SUPERVISE_PERM)
        strength = case_strength(locked, now=now)
        verified = strength is not None
        if kind.high_risk and strength != VerificationStrength.STRONG:
            why = "not_strongly_verified" if verified else "not_verified"
        elif not verified and not supervisor:
            why = "not_verified"
        elif strength == VerificationStrength.WEAK and not supervisor and not knowledge_allows(locked, kind.key):
            why = "weak_not_allowed"
        if not why:
            needs = []
            if kind.high_risk:
                needs.append("a supervisor's approval: high-risk action, two people")
            clash = _cooling_off_clash(case=locked, group=kind.group, now=now)
            if clash is not None:
                needs.append(
                    f"a supervisor's approval with a reason: {ACTIONS[clash.action].label.lower()} was asked for "
                    f"this customer at {timezone.localtime(clash.requested_at):%Y-%m-%d %H:%M}, within the "
                    "cooling-off window"
                )
            account_action = AccountAction.objects.create(
                tenant_id=locked.tenant_id, case=locked, customer_id=locked.customer_id, action=kind.key,
                params=clean, state=ActionState.PENDING_APPROVAL if needs else ActionState.REQUESTED,
                requested_by=actor, requested_at=now,
                verification_method=locked.verification_method if verified else "",
                needs="; ".join(needs)[:300], updated_at=now,
            )  # fmt: skip
            _case_record(
                locked, actor=actor, event="action_requested", action=Action.CREATE,
                changes=audit_diff({}, {"action": kind.key, "state": account_action.state}),
                account_action=str(account_action.uuid), action_kind=kind.key,
                allowed_as="verified customer" if verified else "supervisor",
            )  # fmt: skip
            if account_action.state == ActionState.REQUESTED:
                _dispatch(account_action, case=locked, actor=actor, now=now)
            _case_announce(locked)
            return account_action
    _refusal_record(actor=actor, case=case, action=kind.key, why=why)
    if why == "weak_not_allowed":
        raise ActionRefused(
            f"{kind.label}: the customer is verified by knowledge questions only, which this client's policy does "
            "not accept for it. Verify them with a code to a channel on file or a callback, or ask a supervisor."
        )
    if why == "not_strongly_verified":
        raise ActionRefused(
            f"{kind.label} is a high-risk action: verify the customer with a strong method first (a one-time code or "
            "number matching to a channel on file, or a callback to the number on file), then ask a supervisor."
        )
    raise ActionRefused("The customer is not verified in this case: verify them first, or ask a supervisor.")


def _supervisor_reason(reason, missing: str) -> str:
    """A supervisor's reason, stripped; ValidationError (`missing`) when empty, or when too long."""
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise ValidationError({"reason": missing})
    if len(reason) > APPROVAL_REASON_MAX_LENGTH:
        raise ValidationError({"reason": f"Keep the reason under {APPROVAL_REASON_MAX_LENGTH} characters."})
    return reason


@transaction.atomic
def action_approve(*, actor: User, account_action: AccountAction, reason: str) -> AccountAction:
    """A supervisor of the tenant approves an action waiting for approval, with a reason; it is then
    sent. Not the one who asked (two people: PermissionDenied); a high-risk one only while the
    customer is still strongly verified (ActionRefused)."""
    reason = _supervisor_reason(reason, "Say why you approve it.")
    locked = AccountAction.objects.select_for_update().select_related("case", "case__tenant").get(pk=account_action.pk)
    case = locked.case
    if not user_has_tenant_perm(user=actor, tenant=case.tenant, perm=CASE_SUPERVISE_PERM):
        raise PermissionDenied("Only a supervisor of this client approves account actions.")
    if locked.requested_by_id == actor.pk:
        raise PermissionDenied("Two people: another supervisor approves what you asked for.")
    if locked.state != ActionState.PENDING_APPROVAL:
        raise ActionRefused(f"This action is {locked.get_state_display().lower()}: there is nothing to approve.")
    if case.status not in OPEN_CASE_STATUSES:
        raise ActionRefused("This case is resolved.")
    if ACTIONS[locked.action].high_risk and not (
        case_is_verified(case) and method_strength(case.verification_method) == VerificationStrength.STRONG
    ):
        raise ActionRefused("The customer's strong verification has ended: verify them again before approving.")
    now = timezone.now()
    locked.state, locked.approved_by, locked.approved_at, locked.approval_reason = (
        ActionState.REQUESTED, actor, now, reason,
    )  # fmt: skip
    locked.updated_at = now
    locked.save(update_fields=["state", "approved_by", "approved_at", "approval_reason", "updated_at"])
    _case_record(
        case, actor=actor, event="action_approved", reason=reason,
        changes=audit_diff({"state": ActionState.PENDING_APPROVAL}, {"state": ActionState.REQUESTED}),
        account_action=str(locked.uuid), action_kind=locked.action, requested_by=locked.requested_by_id,
    )  # fmt: skip
    _dispatch(locked, case=case, actor=actor, now=now)
    _case_announce(case)
    return locked


# --- the hold after the customer was told ------------------------------------------------------------


def action_release_due(*, action_id: int, now: datetime | None = None) -> bool:
    """The hold of a waiting action has ended: it is sent (after commit). Nothing when it is not
    waiting any more (a "No" put it on hold, a supervisor sent it) or its hold has not ended yet.
    Whether it was released."""
    with transaction.atomic():
        now = now or timezone.now()
        locked = (
            AccountAction.objects.select_for_update()
            .filter(pk=action_id, state=ActionState.WAITING, hold_until__lte=now)
            .first()
        )
        if locked is None:
            return False
        case = Case.objects.select_related("tenant", "assignee").get(pk=locked.case_id)
        _release(locked, case=case, actor=None, event="action_hold_ended", now=now)
        return True


def actions_release_due(*, now: datetime | None = None) -> int:
    """Send every waiting action whose hold has ended (beat, every minute: the relay behind each
    action's own countdown task). Each in its own transaction. How many were released."""
    now = now or timezone.now()
    due = AccountAction.objects.filter(state=ActionState.WAITING, hold_until__lte=now).values_list("pk", flat=True)
    return sum(action_release_due(action_id=pk, now=now) for pk in list(due[:500]))


@transaction.atomic
def action_release_now(*, actor: User, account_action: AccountAction, reason: str) -> AccountAction:
    """A supervisor of the tenant sends a waiting action before its hold ends, with a reason (the
    customer on the line confirms, say). Not one the customer's "No" put on hold (ActionRefused)."""
    reason = _supervisor_reason(reason, "Say why it cannot wait.")
    locked = AccountAction.objects.select_for_update().get(pk=account_action.pk)
    case = Case.objects.select_related("tenant", "assignee").get(pk=locked.case_id)
    if not user_has_tenant_perm(user=actor, tenant=case.tenant, perm=CASE_SUPERVISE_PERM):
        raise PermissionDenied("Only a supervisor of this client sends an action before its hold ends.")
    if locked.state == ActionState.ON_HOLD:
        raise ActionRefused("The customer said it was not them: this change stays on hold.")
    if locked.state != ActionState.WAITING:
        raise ActionRefused(f"This action is {locked.get_state_display().lower()}: it is not waiting.")
    _release(locked, case=case, actor=actor, event="action_hold_overridden", now=timezone.now(), reason=reason)
    return locked


def _release(locked: AccountAction, *, case: Case, actor, event: str, now, reason: str = "") -> None:
    locked.state, locked.updated_at = ActionState.REQUESTED, now
    locked.save(update_fields=["state", "updated_at"])
    _case_record(
        case, actor=actor, event=event, reason=reason,
        changes=audit_diff({"state": ActionState.WAITING}, {"state": ActionState.REQUESTED}),
        account_action=str(locked.uuid), action_kind=locked.action,
    )  # fmt: skip
    _send_on_commit(locked)
    _case_announce(case)


@transaction.atomic
def action_hold_for_customer_answer(*, reference, notification_id: int, via: str = "link") -> AccountAction | None:
    """The customer answered "No" to the notice of an action (alerts.signals.notice_disowned): it is
    put on hold if it has not gone out yet, recorded on the case, and the tenant's supervisors hear
    of it live (a desk-raised concern, the case announced). One sent meanwhile (a supervisor did not
    wait) cannot be held back: that is recorded and raised all the same. None for an unknown
    reference."""
    locked = AccountAction.objects.select_for_update().filter(uuid=reference).first()
    if locked is None:
        return None
    case = Case.objects.select_related("tenant", "assignee").get(pk=locked.case_id)
    before = locked.state
    held = before in (ActionState.WAITING, ActionState.PENDING_APPROVAL, ActionState.REQUESTED)
    if held:
        locked.state, locked.updated_at = ActionState.ON_HOLD, timezone.now()
        locked.save(update_fields=["state", "updated_at"])
    event = "action_put_on_hold" if held else "action_disowned_too_late"
    if before == ActionState.CANCELLED:  # never sent: nothing to hold back, but still the customer's word
        event = "action_disowned_cancelled"
    _case_record(
        case, actor=None, event=event,
        changes=audit_diff({"state": before}, {"state": locked.state}) if held else {},
        account_action=str(locked.uuid), action_kind=locked.action, notification=notification_id, via=via,
    )  # fmt: skip
    label = ACTIONS[locked.action].label.lower()
    note = f"the customer answered “No, it wasn't me” to the notice of “{label}”" + (
        ": it is on hold." if held else f", which was {locked.get_state_display().lower()} already."
    )
    if before == ActionState.CANCELLED:
        note = f"the customer answered “No, it wasn't me” to the notice of “{label}”"
        note += ", cancelled when the case was resolved."
    concern_raise_by_desk(case=case, note=note, trigger="customer_disowned_action", once=False,
                          account_action=str(locked.uuid))  # fmt: skip
    _case_announce(case)
    return locked


# --- a case resolved with actions still pending ------------------------------------------------------


def actions_cancel_for_resolved_case(*, case: Case, actor: User | None, now: datetime) -> list[AccountAction]:
    """Cancel the case's actions that have not gone out (ACTION_PENDING_STATES: waiting for a
    supervisor's approval, for the hold after the customer was told, or on hold after their "No"),
    each recorded on the case with the reason. Called by desk.services.case_close in its transaction,
    the case locked: once resolved nobody watches the case, no one may approve or release on it
    (action_request, action_approve refuse), and an on-hold action has no other way out, so a pending
    action goes nowhere rather than reaching the client's systems later. A requested or sent one is
    on its way already (the agent locked the account, then resolved): it still goes. The release task
    and the beat relay pick waiting actions only, so a cancelled one is never sent."""
    pending = list(
        AccountAction.objects.select_for_update()
        .filter(case_id=case.pk, state__in=ACTION_PENDING_STATES)
        .order_by("requested_at", "pk")
    )
    reason = "The case was resolved before it went out."
    for account_action in pending:
        before = account_action.state
        account_action.state, account_action.updated_at = ActionState.CANCELLED, now
        account_action.save(update_fields=["state", "updated_at"])
        _case_record(
            case, actor=actor, event="action_cancelled", reason=reason,
            changes=audit_diff({"state": before}, {"state": ActionState.CANCELLED}),
            account_action=str(account_action.uuid), action_kind=account_action.action,
        )  # fmt: skip
    return pending


# --- what a customer's "No, it wasn't me" asks for ----------------------------------------------------


def actions_request_for_customer_answer(*, case: Case, alert_id: int, notification_id: int | None) -> list:
    """The account actions the tenant enabled for a customer's "No" (ActionSettings.customer_no_actions),
    requested for the case's customer and sent once this commits; each kind once per case (a second
    "No", to another alert of the case, asks nothing more while the first is not failed). Called in
    the answer's transaction. The actions requested."""
    wanted = [k for k in action_settings_for(tenant_id=case.tenant_id).customer_no_actions or () if k in ACTIONS]
    wanted = [k for k in dict.fromkeys(wanted) if ACTIONS[k].customer_may_ask]
    if not wanted:
        return []
    asked = set(
        AccountAction.objects.filter(case=case, requested_via=ActionRequestedVia.CUSTOMER_ANSWER, action__in=wanted)
        .exclude(state=ActionState.FAILED)
        .values_list("action", flat=True)
    )
    now, made = timezone.now(), []
    for key in wanted:
        if key in asked:
            continue
        account_action = AccountAction.objects.create(
            tenant_id=case.tenant_id, case=case, customer_id=case.customer_id, action=key, params={},
            state=ActionState.REQUESTED, requested_by=None, requested_via=ActionRequestedVia.CUSTOMER_ANSWER,
            requested_at=now, updated_at=now,
        )  # fmt: skip
        _case_record(
            case, actor=None, event="action_requested", action=Action.CREATE,
            changes=audit_diff({}, {"action": key, "state": account_action.state}),
            account_action=str(account_action.uuid), action_kind=key, allowed_as="customer's answer",
            alert=alert_id, notification=notification_id,
        )  # fmt: skip
        _send_on_commit(account_action)
        made.append(account_action)
    if made:
        _case_announce(case)
    return made


# --- the signed webhook ------------------------------------------------------------------------------


def action_webhook_body(account_action: AccountAction) -> bytes:
    """The contract's body: {"id", "action", "account": {"external_id"}, "case", "requested_by",
    "requested_at"} (plus "params" when the kind has any). `id` is what the client dedupes on."""
    body = {
        "id": str(account_action.uuid),
        "action": account_action.action,
        "account": {"external_id": account_action.customer.external_id},
        "case": account_action.case_id,
        # A customer's own "No, it wasn't me" asked for it: no staff member did.
        "requested_by": account_action.requested_by.username if account_action.requested_by_id else "customer",
        "requested_at": account_action.requested_at.isoformat(),
    }
    if account_action.params:
        body["params"] = account_action.params
    return json.dumps(body, separators=(",", ":")).encode()


def _post(url: str, secret: str, body: bytes) -> int:
    request = urllib.request.Request(  # noqa: S310 (the tenant's https or http URL, checked when set)
        url, data=body, method="POST", headers=signed_headers(secret=secret, body=body)
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def action_deliver(*, action_id: int) -> str:
    """POST the action to the tenant's webhook once: "confirmed" (a 2xx), "retry" (anything else,
    or unreachable), or "done" (nothing to send: not requested, or sent already). The state is
    `sent` while the call is out; the task retries with backoff and fails it in the end."""
    with transaction.atomic():
        locked = (
            AccountAction.objects.select_for_update(of=("self",))
            .select_related("customer", "requested_by", "tenant")
            .filter(pk=action_id, state__in=[ActionState.REQUESTED, ActionState.SENT])
            .first()
        )
        if locked is None:
            return "done"
        now = timezone.now()
        first = locked.state == ActionState.REQUESTED
        locked.state, locked.attempts, locked.sent_at, locked.updated_at = (
            ActionState.SENT, locked.attempts + 1, locked.sent_at or now, now,
        )  # fmt: skip
        locked.save(update_fields=["state", "attempts", "sent_at", "updated_at"])
        if first:  # the case's history says when it left (retries show on the action's row)
            case = Case.objects.select_related("tenant").get(pk=locked.case_id)
            _case_record(case, actor=None, event="action_sent", account_action=str(locked.uuid),
                         action_kind=locked.action)  # fmt: skip
    settings = action_settings_for(tenant_id=locked.tenant_id)
    if not settings.webhook_url or not settings.webhook_secret:
        code = "webhook_not_configured"
    else:
        try:
            status = _post(settings.webhook_url, settings.webhook_secret, action_webhook_body(locked))
        except (OSError, ValueError) as error:  # unreachable, timed out, refused
            code = f"error_{type(error).__name__}"
        else:
            code = "" if 200 <= status < 300 else f"http_{status}"
    with transaction.atomic():
        now = timezone.now()
        if not code:
            AccountAction.objects.filter(pk=locked.pk, state=ActionState.SENT).update(
                state=ActionState.CONFIRMED, confirmed_at=now, error="", updated_at=now
            )
            case = Case.objects.select_related("tenant", "assignee").get(pk=locked.case_id)
            _case_record(case, actor=None, event="action_confirmed", account_action=str(locked.uuid),
                    action_kind=locked.action, attempts=locked.attempts)  # fmt: skip
            _case_announce(case)
            return "confirmed"
        AccountAction.objects.filter(pk=locked.pk).update(error=code[:100], updated_at=now)
    return "retry"


@transaction.atomic
def action_fail(*, action_id: int) -> None:
    """The retries are spent: the action failed (its last error stays)."""
    locked = AccountAction.objects.select_for_update().filter(pk=action_id, state=ActionState.SENT).first()
    if locked is None:
        return
    locked.state, locked.updated_at = ActionState.FAILED, timezone.now()
    locked.save(update_fields=["state", "updated_at"])
    case = Case.objects.select_related("tenant", "assignee").get(pk=locked.case_id)
    _case_record(case, actor=None, event="action_failed", account_action=str(locked.uuid), action_kind=locked.action,
            error=locked.error, attempts=locked.attempts)  # fmt: skip
    _case_announce(case)


_URL = URLValidator(schemes=["https", "http"])
HOLD_MINUTES_MAX = 7 * 24 * 60


@transaction.atomic
def action_settings_update(
    *, tenant: Tenant, actor: User | None = None, notice_hold_minutes=None, customer_no_actions=None
) -> ActionSettings:
    """Change the tenant's hold after a contact-change notice (0 to a week, in minutes) or the
    actions a customer's "No" asks for (low-risk kinds only); checked, audited."""
    settings, _ = ActionSettings.objects.select_for_update().get_or_create(tenant=tenant)
    before = {"notice_hold_minutes": settings.notice_hold_minutes, "customer_no_actions": settings.customer_no_actions}
    if notice_hold_minutes is not None:
        if type(notice_hold_minutes) is not int or not 0 <= notice_hold_minutes <= HOLD_MINUTES_MAX:
            raise ValidationError({"notice_hold_minutes": f"Give a number of minutes from 0 to {HOLD_MINUTES_MAX}."})
        settings.notice_hold_minutes = notice_hold_minutes
    if customer_no_actions is not None:
        allowed = [k for k, kind in ACTIONS.items() if kind.customer_may_ask]
        if not isinstance(customer_no_actions, list) or any(k not in allowed for k in customer_no_actions):
            raise ValidationError({"customer_no_actions": f"Give actions among {', '.join(allowed)}."})
        settings.customer_no_actions = list(dict.fromkeys(customer_no_actions))
    settings.updated_at = timezone.now()
    settings.save()
    after = {"notice_hold_minutes": settings.notice_hold_minutes, "customer_no_actions": settings.customer_no_actions}
    if diff := audit_diff(before, after):
        audit_record(action=Action.UPDATE, actor=actor, tenant=tenant, target=tenant, changes=diff,
                     metadata={"event": "action_settings_set"})  # fmt: skip
    return settings


@transaction.atomic
def action_settings_knowledge_set(*, tenant: Tenant, allows: list[str], actor: User | None = None) -> ActionSettings:
    """Set which steps knowledge questions alone may unlock for the tenant's callers: low-risk action
    kinds and "reveal". A high-risk kind, or anything unknown, is refused (ValidationError)."""
    allowed = [key for key, _ in knowledge_step_choices()]
    if not isinstance(allows, list | tuple) or any(step not in allowed for step in allows):
        raise ValidationError(
            {"knowledge_allows": f"Knowledge questions may unlock only low-risk steps: {', '.join(allowed)}."}
        )
    settings, _ = ActionSettings.objects.select_for_update().get_or_create(tenant=tenant)
    before = list(settings.knowledge_allows or [])
    after = sorted(set(allows))
    if after == sorted(set(before)):  # the same policy again: nothing changed, nothing to record
        return settings
    settings.knowledge_allows, settings.updated_at = after, timezone.now()
    settings.save(update_fields=["knowledge_allows", "updated_at"])
    audit_record(
        action=Action.UPDATE, actor=actor, tenant=tenant, target=tenant,
        changes=audit_diff({"knowledge_allows": before}, {"knowledge_allows": settings.knowledge_allows}),
        metadata={"event": "knowledge_policy_set"},
    )  # fmt: skip
    return settings


@transaction.atomic
def tenant_webhook_set(*, tenant: Tenant, url: str, actor: User | None = None) -> str:
    """Point the tenant's account-action webhook at `url` with a new secret (stored encrypted), and
    return the secret: the only time anyone sees it. The trail records that it changed, never it."""
    try:
        _URL(url)
    except ValidationError:
        raise ValidationError({"url": "Give the full http(s) URL of the client's endpoint."}) from None
    secret = secrets.token_urlsafe(32)
    settings, _ = ActionSettings.objects.select_for_update().get_or_create(tenant=tenant)
    before = settings.webhook_url
    settings.webhook_url, settings.webhook_secret, settings.updated_at = url, secret, timezone.now()
    settings.save()
    audit_record(
        action=Action.UPDATE, actor=actor, tenant=tenant, target=tenant,
        changes=audit_diff({"action_webhook_url": before}, {"action_webhook_url": url}),
        metadata={"event": "action_webhook_set", "secret": "rotated"},
    )  # fmt: skip
    return secret


@dataclass(frozen=True)
class WebhookTestResult:
    """What the tenant's endpoint made of a signed test call: `outcome` "" (a 2xx), "http_<status>",
    "error_<class>" (unreachable, timed out) or "webhook_not_configured"; how long it took."""

    outcome: str
    status: int | None = None
    milliseconds: int = 0

    @property
    def ok(self) -> bool:
        return not self.outcome


def tenant_webhook_test(*, actor: User, tenant: Tenant) -> WebhookTestResult:
    """Send the tenant's account-action webhook a signed test call, as a real action is sent (same
    URL, secret, headers and body shape) with action "test" and a fresh id, and no account: the
    client answers 2xx and does nothing. Proves the URL and the signature work; a tenant admin's
    step (accounts.change_tenant there: PermissionDenied otherwise), audited with its outcome. The
    call is made outside any transaction; its record after."""
    if not user_has_tenant_perm(user=actor, tenant=tenant, perm=WEBHOOK_TEST_PERM):
        raise PermissionDenied("Only an admin of this client tests its webhook.")
    settings = action_settings_for(tenant_id=tenant.pk)
    status, started = None, time.monotonic()
    if not settings.webhook_url or not settings.webhook_secret:
        outcome = "webhook_not_configured"
    else:
        body = {
            "id": str(uuid.uuid4()), "action": "test", "account": {"external_id": ""}, "case": None,
            "requested_by": actor.username, "requested_at": timezone.now().isoformat(), "test": True,
        }  # fmt: skip
        raw = json.dumps(body, separators=(",", ":")).encode()
        try:
            status = _post(settings.webhook_url, settings.webhook_secret, raw)
        except (OSError, ValueError) as error:
            outcome = f"error_{type(error).__name__}"
        else:
            outcome = "" if 200 <= status < 300 else f"http_{status}"
    result = WebhookTestResult(outcome=outcome, status=status, milliseconds=round((time.monotonic() - started) * 1000))
    with transaction.atomic():
        audit_record(
            action=Action.CREATE, actor=actor, tenant=tenant, target=tenant,
            metadata={"event": "action_webhook_test", "outcome": outcome or "ok", "status": status,
                      "milliseconds": result.milliseconds},
        )  # fmt: skip
    return result
