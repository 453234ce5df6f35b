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
  a reason, whatever their own risk.
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
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record
from desk.actions import ACTIONS, CONTACT, CREDENTIAL
from desk.models import (
    OPEN_CASE_STATUSES,
    AccountAction,
    ActionSettings,
    ActionState,
    Case,
    VerificationStrength,
)
from desk.selectors import (
    CASE_SUPERVISE_PERM,
    KNOWLEDGE_STEPS,
    action_settings_for,
    case_is_verified,
    case_strength,
    knowledge_allows,
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
                _send_on_commit(account_action)
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


@transaction.atomic
def action_approve(*, actor: User, account_action: AccountAction, reason: str) -> AccountAction:
    """A supervisor of the tenant approves an action waiting for approval, with a reason; it is then
    sent. Not the one who asked (two people: PermissionDenied); a high-risk one only while the
    customer is still strongly verified (ActionRefused)."""
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise ValidationError({"reason": "Say why you approve it."})
    if len(reason) > APPROVAL_REASON_MAX_LENGTH:
        raise ValidationError({"reason": f"Keep the reason under {APPROVAL_REASON_MAX_LENGTH} characters."})
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
    _send_on_commit(locked)
    _case_announce(case)
    return locked


# --- the signed webhook ------------------------------------------------------------------------------


def action_webhook_body(account_action: AccountAction) -> bytes:
    """The contract's body: {"id", "action", "account": {"external_id"}, "case", "requested_by",
    "requested_at"} (plus "params" when the kind has any). `id` is what the client dedupes on."""
    body = {
        "id": str(account_action.uuid),
        "action": account_action.action,
        "account": {"external_id": account_action.customer.external_id},
        "case": account_action.case_id,
        "requested_by": account_action.requested_by.username,
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


@transaction.atomic
def action_settings_knowledge_set(*, tenant: Tenant, allows: list[str], actor: User | None = None) -> ActionSettings:
    """Set which steps knowledge questions alone may unlock for the tenant's callers: low-risk action
    kinds and "reveal". A high-risk kind, or anything unknown, is refused (ValidationError)."""
    allowed = [k for k, kind in ACTIONS.items() if not kind.high_risk] + list(KNOWLEDGE_STEPS)  # in that order
    if not isinstance(allows, list | tuple) or any(step not in allowed for step in allows):
        raise ValidationError(
            {"knowledge_allows": f"Knowledge questions may unlock only low-risk steps: {', '.join(allowed)}."}
        )
    settings, _ = ActionSettings.objects.select_for_update().get_or_create(tenant=tenant)
    before = list(settings.knowledge_allows or [])
    settings.knowledge_allows, settings.updated_at = sorted(set(allows)), timezone.now()
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
