"""Every write to queues, queue grants and cases: audited in the same transaction, announced after commit."""

from collections.abc import Iterable
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm
from guardian.utils import get_user_obj_perms_model

from accounts.models import Membership, Tenant, User
from accounts.selectors import user_has_tenant_perm
from alerts.models import ACTIVE_STATUSES, Alert, AlertType, Severity
from alerts.selectors import ALERT_CHANGE_PERM
from alerts.services import AlertClaimConflict, alert_claim
from alerts.sla import Policies, sla_apply, sla_due_now, sla_policies_for
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record
from config import push
from desk.models import (
    CASE_TRANSITIONS,
    OPEN_CASE_STATUSES,
    Case,
    CaseAlert,
    CaseNote,
    CaseOpenedVia,
    CaseOutcome,
    CaseReveal,
    CaseStatus,
    ConcernKind,
    ConcernStatus,
    PlaybookCheck,
    PlaybookOverride,
    Queue,
    RevealField,
    RevealReason,
    SecurityConcern,
    VerificationStrength,
)
from desk.playbooks import PLAYBOOKS
from desk.selectors import (
    CASE_CHANGE_PERM,
    CASE_SUPERVISE_PERM,
    PLAYBOOK_EDIT_PERM,
    QUEUE_ORDER_BY,
    case_is_visible_to,
    case_strength,
    customer_fields_clear,
    knowledge_allows,
    playbook_checklist,
    queue_alerts_q,
    queue_for_alert,
    queues_of_tenants,
)

DEFAULT_QUEUE_SLUG = "default"
DEFAULT_QUEUE_NAME = "Default"
QUEUE_WORK_CODENAME = "work_queue"


@transaction.atomic
def queue_create_default(*, tenant: Tenant, actor: User | None = None) -> Queue:
    """The tenant's `default` queue (made if missing): it takes every alert that no more specific
    queue takes. Called for each new tenant (accounts.signals.tenant_created)."""
    queue = Queue.objects.filter(tenant=tenant, is_default=True).first()
    if queue is not None:
        return queue
    queue = Queue.objects.create(tenant=tenant, slug=DEFAULT_QUEUE_SLUG, name=DEFAULT_QUEUE_NAME, is_default=True)
    audit_record(
        action=Action.CREATE,
        actor=actor,
        tenant=tenant,
        target=queue,
        changes=audit_diff({}, {"slug": queue.slug, "name": queue.name, "is_default": True}),
    )
    return queue


@transaction.atomic
def queue_create(
    *,
    tenant: Tenant,
    slug: str,
    name: str,
    alert_types: Iterable[str] = (),
    min_severity: int | None = None,
    actor: User | None = None,
) -> Queue:
    """An extra queue of `tenant` that takes the alerts of `alert_types` (any, when empty) of at
    least `min_severity` (any, when None) that no more specific queue takes. It must filter on
    something: a queue without a filter would be a second default."""
    types = sorted(set(alert_types))
    errors: dict[str, str] = {}
    unknown = [t for t in types if t not in AlertType.values]
    if unknown:
        errors["alert_types"] = f"Unknown alert types: {', '.join(unknown)} (known: {', '.join(AlertType.values)})."
    if min_severity is not None and (
        isinstance(min_severity, bool) or not isinstance(min_severity, int) or min_severity not in Severity.values
    ):
        errors["min_severity"] = "The minimum severity is a number from 1 (low) to 4 (critical)."
    if not types and min_severity is None:
        errors["alert_types"] = (
            "A queue needs a filter (alert types, a minimum severity, or both): default takes the rest."
        )
    if slug == DEFAULT_QUEUE_SLUG:
        errors["slug"] = "'default' is the tenant's default queue."
    elif Queue.objects.filter(tenant=tenant, slug=slug).exists():  # the constraint still holds under a race
        errors["slug"] = f"{tenant.slug} already has a queue {slug}."
    if errors:
        raise ValidationError(errors)
    queue = Queue(tenant=tenant, slug=slug, name=name, alert_types=types, min_severity=min_severity)
    queue.full_clean()  # slug and name
    queue.save()
    audit_record(
        action=Action.CREATE,
        actor=actor,
        tenant=tenant,
        target=queue,
        changes=audit_diff({}, {"slug": slug, "name": name, "alert_types": types, "min_severity": min_severity}),
    )
    return queue


def _holds_grant(*, queue: Queue, user: User) -> bool:
    return (
        get_user_obj_perms_model(queue)
        .objects.filter(
            user=user,
            permission__codename=QUEUE_WORK_CODENAME,
            permission__content_type__app_label="desk",
            object_pk=str(queue.pk),
        )
        .exists()
    )


def _record_grant(*, queue: Queue, user: User, granted: bool, actor: User | None) -> None:
    # One line in the grantee's history (as a membership change is), naming the queue.
    field = f"queue {queue.slug}"
    audit_record(
        action=Action.UPDATE,
        actor=actor,
        tenant=queue.tenant,
        target=user,
        changes=audit_diff({field: "granted" if not granted else None}, {field: "granted" if granted else None}),
        metadata={"queue": queue.pk, "permission": f"desk.{QUEUE_WORK_CODENAME}"},
    )


@transaction.atomic
def queue_grant(*, queue: Queue, user: User, actor: User | None = None) -> None:
    """Let `user` work `queue` (guardian object permission desk.work_queue). Only a member of the
    queue's tenant (any role) can be granted. Granting twice changes nothing."""
    if not Membership.objects.filter(user=user, tenant_id=queue.tenant_id).exists():
        raise ValidationError({"user": "Only a staff member of the queue's tenant can be granted its queues."})
    if _holds_grant(queue=queue, user=user):
        return
    assign_perm(f"desk.{QUEUE_WORK_CODENAME}", user, queue)
    _record_grant(queue=queue, user=user, granted=True, actor=actor)
    push.user_access_changed(user.pk)  # after commit: open connections re-check


@transaction.atomic
def queue_revoke(*, queue: Queue, user: User, actor: User | None = None) -> None:
    """Take `queue` from `user`. Revoking what was not granted changes nothing."""
    if not _holds_grant(queue=queue, user=user):
        return
    remove_perm(f"desk.{QUEUE_WORK_CODENAME}", user, queue)
    _record_grant(queue=queue, user=user, granted=False, actor=actor)
    push.user_access_changed(user.pk)


@transaction.atomic
def queue_grant_default(*, tenant: Tenant, user: User, actor: User | None = None) -> Queue:
    """Grant `user` the tenant's default queue (what add_staff does for a new agent)."""
    queue = queue_create_default(tenant=tenant, actor=actor)
    queue_grant(queue=queue, user=user, actor=actor)
    return queue


NEXT_ATTEMPTS = 5


def alert_claim_next(*, queue: Queue, siblings: Iterable[Queue], actor: User) -> Alert | None:
    """Claim for `actor` the best alert of `queue` that nobody holds (the first in queue order), or
    None when none is left. Safe under concurrency: callers at the same moment get different alerts
    (PostgreSQL: the candidate row is locked with SKIP LOCKED, so a concurrent caller takes the next
    one instead of waiting); the claim itself is alerts.services.alert_claim (audited, announced).
    `queue` comes from desk.selectors.queue_get_for; a role that may not work the tenant's alerts
    gets PermissionDenied."""
    if not user_has_tenant_perm(user=actor, tenant=queue.tenant, perm=ALERT_CHANGE_PERM):
        raise PermissionDenied("Your role may not work alerts of this client.")
    siblings = list(siblings)
    for _ in range(NEXT_ATTEMPTS):
        with transaction.atomic():
            # No joins in the locked query (of self only): PostgreSQL would lock the joined rows too.
            pk = (
                Alert.objects.filter(queue_alerts_q(queue, siblings), status__in=ACTIVE_STATUSES, assignee__isnull=True)
                .order_by(*QUEUE_ORDER_BY)
                .select_for_update(skip_locked=True, of=("self",))
                .values_list("pk", flat=True)
                .first()
            )
            if pk is None:
                return None
            try:
                return alert_claim(alert=Alert(pk=pk), actor=actor)
            except AlertClaimConflict:
                continue  # taken or closed since it was read (SQLite has no row locks): the next one
    return None


# --- cases ------------------------------------------------------------------------------------------
#
# Every write to a case: audited in its transaction, announced after commit (config.push.case_events:
# ids and states only). Callers fetch cases through desk.selectors.case_get_to_act; these services
# check the rules of their own (the reveal rule, supervising, shares) and the case's state.

NOTE_MAX_LENGTH = 2000
CLOSE_NOTE_MAX_LENGTH = Case._meta.get_field("resolution_note").max_length
REVEAL_MINUTES = 5  # how long a revealed field stays shown to the one who revealed it
REVEAL_REASON_MAX_LENGTH = CaseReveal._meta.get_field("reason_text").max_length
CONCERN_NOTE_MAX_LENGTH = SecurityConcern._meta.get_field("note").max_length
CASE_WORK_CODENAME = "work_case"


class CaseConflict(Exception):  # noqa: N818 (answered as a 409, like alerts' AlertClaimConflict)
    """The case's state does not allow this (it is resolved, or someone else holds it)."""

    @property
    def message(self) -> str:
        return str(self.args[0])


class CaseNotVisible(PermissionDenied):
    """The customer's open case is in a queue the caller does not work: they may not add to it."""


class RevealRefused(PermissionDenied):
    """The reveal rule refused: the customer is not verified in this case and the caller is no
    supervisor of its tenant."""


def _case_announce(case: Case) -> None:
    assignee = case.assignee.username if case.assignee_id else None
    push.case_events(
        [{"tenant": case.tenant_id, "id": case.pk, "queue": case.queue_id, "status": case.status, "assignee": assignee}]
    )


def _case_sla(case: Case, policies: Policies) -> None:
    sla_apply(case, policies, raised_at=case.opened_at, active=case.status in OPEN_CASE_STATUSES)


def _case_first_response(case: Case, now) -> list[str]:
    """A staff member's first response to the case (a claim, a note, a status change): the SLA
    moves on to resolution. The fields to save."""
    if case.first_response_at is not None:
        return []
    case.first_response_at = now
    case.sla_due_at = sla_due_now(case, active=case.status in OPEN_CASE_STATUSES)
    return ["first_response_at", "sla_due_at"]


def _case_record(case: Case, *, actor, event: str, action=Action.UPDATE, changes=None, reason="", **metadata) -> None:
    """One line of the case's history; `event` names it for the case timeline."""
    audit_record(
        action=action,
        actor=actor,
        tenant=case.tenant,
        target=case,
        changes=changes or {},
        reason=reason,
        metadata={"event": event, **metadata},
    )


def _case_queue(alert: Alert) -> Queue:
    """The queue of the alert (desk.selectors.queue_for_alert), else the tenant's default."""
    queue = queue_for_alert(alert, queues_of_tenants(tenant_ids=[alert.tenant_id]))
    return queue if queue is not None else queue_create_default(tenant=alert.tenant)


def _case_take_alert(case: Case, alert: Alert, *, now) -> bool:
    """Add `alert` to `case` (locked); a more severe alert raises the case's severity and brings its
    due times forward. Whether it was added (False: it was there already)."""
    _, added = CaseAlert.objects.get_or_create(
        case=case, alert=alert, defaults={"added_at": now, "alert_seen_at": alert.first_seen_at}
    )
    if added and alert.severity > case.severity:
        case.severity = alert.severity
        _case_sla(case, sla_policies_for(tenant_ids=[case.tenant_id]))
        case.updated_at = now
        case.save(update_fields=["severity", "first_response_due_at", "resolution_due_at", "sla_due_at", "updated_at"])
    return added


def _case_of_alert(*, alert: Alert, actor, via: str, now) -> tuple[Case, bool]:
    """The open case of the alert's customer, locked, or a new one (True): concurrent openings for
    one customer meet at the partial unique constraint, and the loser takes the winner's case."""
    for _ in range(3):
        case = (
            Case.objects.select_for_update()
            .select_related("tenant")
            .filter(customer_id=alert.customer_id, status__in=OPEN_CASE_STATUSES)
            .first()
        )
        if case is not None:
            return case, False
        case = Case(
            tenant=alert.tenant,
            customer_id=alert.customer_id,
            queue=_case_queue(alert),
            severity=alert.severity,
            opened_via=via,
            opened_by=actor,
            opened_at=now,
            updated_at=now,
        )
        _case_sla(case, sla_policies_for(tenant_ids=[alert.tenant_id]))
        try:
            with transaction.atomic():  # a savepoint: losing the race leaves this transaction usable
                case.save(force_insert=True)
        except IntegrityError:
            continue
        return case, True
    raise CaseConflict("This customer's case is changing right now; try again.")


def _opened_changes(case: Case) -> dict:
    return audit_diff(
        {}, {"status": case.status, "opened_via": case.opened_via, "queue": case.queue.slug, "severity": case.severity}
    )


@transaction.atomic
def case_open(*, actor: User, alert: Alert) -> tuple[Case, bool]:
    """The open case of the alert's customer, with the alert in it; opened (from the alert's queue,
    else the tenant's default) when the customer has none. Idempotent. Returns (case, opened).
    An alert about no single account cannot have a case (ValidationError); a customer's open case
    in a queue `actor` does not see is not theirs to add to (CaseNotVisible, nothing changed)."""
    if alert.customer_id is None:
        raise ValidationError(
            {"alert": "This alert is not about one account: there is no customer to open a case for."}
        )
    now = timezone.now()
    case, opened = _case_of_alert(alert=alert, actor=actor, via=CaseOpenedVia.ALERT, now=now)
    if not opened and not case_is_visible_to(user=actor, case=case):
        raise CaseNotVisible(
            "This customer's open case is in a queue you do not work: ask a supervisor to share it with you."
        )
    added = _case_take_alert(case, alert, now=now)
    if opened:
        _case_record(
            case, actor=actor, event="opened", action=Action.CREATE, changes=_opened_changes(case), alert=alert.pk
        )
    elif added:
        _case_record(case, actor=actor, event="alert_added", alert=alert.pk)
    if opened or added:
        _case_announce(case)
    return case, opened


@transaction.atomic
def case_open_for_customer_answer(*, alert_id: int) -> Case | None:
    """The customer answered "No, it wasn't me" to the alert: open their case (or add the alert to
    the open one) and announce it. A case waiting on the customer is open again: they answered.
    Escalating the alert is the answer's own business (it raises the alert's severity); this only
    keeps the case. None when the alert is gone or about no single account."""
    alert = Alert.objects.select_related("tenant").filter(pk=alert_id).first()
    if alert is None or alert.customer_id is None:
        return None
    now = timezone.now()
    case, opened = _case_of_alert(alert=alert, actor=None, via=CaseOpenedVia.CUSTOMER_ANSWER, now=now)
    _case_take_alert(case, alert, now=now)
    changes = _opened_changes(case) if opened else {}
    if case.status == CaseStatus.WAITING_ON_CUSTOMER:
        changes = audit_diff({"status": case.status}, {"status": CaseStatus.OPEN})
        case.status, case.updated_at = CaseStatus.OPEN, now
        case.save(update_fields=["status", "updated_at"])
    _case_record(
        case,
        actor=None,
        event="customer_disowned",
        action=Action.CREATE if opened else Action.UPDATE,
        changes=changes,
        alert=alert.pk,
    )
    _case_announce(case)
    return case


def _case_lock(case: Case) -> Case:
    """The case locked and read again: concurrent steps on one case are judged one after the other.
    No joins in the locked read (PostgreSQL would not re-read joined rows after a wait)."""
    locked = Case.objects.select_for_update().get(pk=case.pk)
    locked.tenant = case.tenant  # the same row: saves a query for the audit line
    return locked


@transaction.atomic
def case_note_add(*, actor: User, case: Case, body: str) -> CaseNote:
    """A note on the case (append-only). Counts as the first response."""
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": "Write the note first."})
    if len(body) > NOTE_MAX_LENGTH:
        raise ValidationError({"body": f"Keep a note under {NOTE_MAX_LENGTH:,} characters."})
    locked = _case_lock(case)
    now = timezone.now()
    note = CaseNote.objects.create(case=locked, author=actor, body=body, created_at=now)
    fields = _case_first_response(locked, now)
    locked.updated_at = now
    locked.save(update_fields=[*fields, "updated_at"])
    # The note's text stays in the note (it may quote the customer): the trail says that it was written.
    audit_record(action=Action.CREATE, actor=actor, tenant=locked.tenant, target=note, metadata={"case": locked.pk})
    _case_announce(locked)
    return note


@transaction.atomic
def case_status_set(*, actor: User, case: Case, status: str) -> Case:
    """Open or waiting on the customer (resolving is case_close, which needs an outcome). The same
    status again changes nothing; a resolved case raises CaseConflict."""
    if status not in (CaseStatus.OPEN, CaseStatus.WAITING_ON_CUSTOMER):
        raise ValidationError({"status": "Give open or waiting_on_customer (resolve with an outcome)."})
    locked = _case_lock(case)
    if locked.status == status:
        return locked
    if status not in CASE_TRANSITIONS[locked.status]:
        raise CaseConflict(f"This case is {locked.get_status_display().lower()}: it cannot change any more.")
    now = timezone.now()
    changes = audit_diff({"status": locked.status}, {"status": status})
    locked.status, locked.updated_at = status, now
    fields = _case_first_response(locked, now)
    locked.save(update_fields=["status", "updated_at", *fields])
    _case_record(locked, actor=actor, event="status", changes=changes)
    _case_announce(locked)
    return locked


@transaction.atomic
def case_close(*, actor: User, case: Case, outcome: str, note: str = "") -> Case:
    """Resolve the case with its outcome. Final. A false positive needs a note saying why. Account
    actions that have not gone out are cancelled, each recorded on the case (see
    desk.action_services.actions_cancel_for_resolved_case)."""
    note = (note or "").strip()
    if outcome not in CaseOutcome.values:
        raise ValidationError({"outcome": f"Give one of {', '.join(CaseOutcome.values)}."})
    if len(note) > CLOSE_NOTE_MAX_LENGTH:
        raise ValidationError({"note": f"Keep the note under {CLOSE_NOTE_MAX_LENGTH} characters."})
    if outcome == CaseOutcome.FALSE_POSITIVE and not note:
        raise ValidationError({"note": "Say why this was a false positive."})
    locked = _case_lock(case)
    if locked.status not in OPEN_CASE_STATUSES:
        raise CaseConflict("This case is resolved already.")
    now = timezone.now()
    changes = audit_diff({"status": locked.status, "outcome": ""}, {"status": CaseStatus.RESOLVED, "outcome": outcome})
    fields = _case_first_response(locked, now)
    locked.status, locked.outcome, locked.updated_at = CaseStatus.RESOLVED, outcome, now
    locked.closed_at, locked.closed_by, locked.resolution_note = now, actor, note
    locked.sla_due_at = None
    locked.save(
        update_fields=[
            *fields,
            "status",
            "outcome",
            "updated_at",
            "closed_at",
            "closed_by",
            "resolution_note",
            "sla_due_at",
        ]
    )
    _case_record(locked, actor=actor, event="status", changes=changes, reason=note)
    from desk.action_services import actions_cancel_for_resolved_case  # it builds on this module

    actions_cancel_for_resolved_case(case=locked, actor=actor, now=now)
    _case_announce(locked)
    return locked


@transaction.atomic
def case_claim(*, actor: User, case: Case) -> Case:
    """`actor` works the case: one staff member at a time. Claiming one's own again changes nothing;
    a case someone else holds, or a resolved one, raises CaseConflict. The first response."""
    locked = _case_lock(case)
    if locked.status not in OPEN_CASE_STATUSES:
        raise CaseConflict("This case is resolved: it can no longer be claimed.")
    if locked.assignee_id == actor.pk:
        return locked
    if locked.assignee_id is not None:
        holder = User.objects.filter(pk=locked.assignee_id).values_list("username", flat=True).first()
        raise CaseConflict(f"{holder} holds this case.")
    now = timezone.now()
    locked.assignee, locked.assigned_at, locked.updated_at = actor, now, now
    fields = _case_first_response(locked, now)
    locked.save(update_fields=["assignee", "assigned_at", "updated_at", *fields])
    _case_record(
        locked, actor=actor, event="claimed", changes=audit_diff({"assignee": None}, {"assignee": actor.username})
    )
    _case_announce(locked)
    return locked


def _holds_case_share(*, case: Case, user: User) -> bool:
    return (
        get_user_obj_perms_model(case)
        .objects.filter(
            user=user,
            permission__codename=CASE_WORK_CODENAME,
            permission__content_type__app_label="desk",
            object_pk=str(case.pk),
        )
        .exists()
    )


def _share_check(*, actor: User, case: Case, user: User | None) -> None:
    if not user_has_tenant_perm(user=actor, tenant=case.tenant, perm=CASE_SUPERVISE_PERM):
        raise PermissionDenied("Only a supervisor of this client shares its cases.")
    if user is None or not user_has_tenant_perm(user=user, tenant=case.tenant, perm=CASE_CHANGE_PERM):
        raise ValidationError({"username": "No staff member by that name works this client's cases."})


@transaction.atomic
def case_share(*, actor: User, case: Case, user: User | None) -> None:
    """A supervisor of the case's tenant shares this one case with a specialist (guardian object
    permission desk.work_case), who then sees and works it as if it were in their queues. Only a
    staff member whose role works the tenant's cases can be given it. Sharing twice changes nothing;
    the specialist's open connections widen at once."""
    _share_check(actor=actor, case=case, user=user)
    if _holds_case_share(case=case, user=user):
        return
    assign_perm(f"desk.{CASE_WORK_CODENAME}", user, case)
    _case_record(
        case, actor=actor, event="shared", changes=audit_diff({"shared_with": None}, {"shared_with": user.username})
    )
    push.user_access_changed(user.pk)


@transaction.atomic
def case_unshare(*, actor: User, case: Case, user: User | None) -> None:
    """Take a shared case back from a specialist; their open connections narrow at once."""
    if not user_has_tenant_perm(user=actor, tenant=case.tenant, perm=CASE_SUPERVISE_PERM):
        raise PermissionDenied("Only a supervisor of this client shares its cases.")
    if user is None or not _holds_case_share(case=case, user=user):
        return
    remove_perm(f"desk.{CASE_WORK_CODENAME}", user, case)
    _case_record(
        case, actor=actor, event="unshared", changes=audit_diff({"shared_with": user.username}, {"shared_with": None})
    )
    push.user_access_changed(user.pk)


@transaction.atomic
def case_reveal(*, actor: User, case: Case, field: str, reason_code: str, reason_text: str) -> tuple[str, CaseReveal]:
    """Show `actor` one field of the case's customer in clear, for REVEAL_MINUTES, with a reason
    chosen from the list and said in words. Allowed when the customer is verified in this case
    (desk.selectors.case_is_verified), or to a supervisor of the tenant; refused otherwise
    (RevealRefused). Audited with the reason; neither the trail nor the reveal keeps the value.
    Returns (the clear value, the reveal)."""
    reason_text = (reason_text or "").strip() if isinstance(reason_text, str) else ""
    errors = {}
    if field not in RevealField.values:
        errors["field"] = f"Give one of {', '.join(RevealField.values)}."
    if reason_code not in RevealReason.values:
        errors["reason_code"] = f"Choose a reason: {', '.join(RevealReason.values)}."
    if not reason_text:
        errors["reason"] = "Say why you need to see it."
    elif len(reason_text) > REVEAL_REASON_MAX_LENGTH:
        errors["reason"] = f"Keep the reason under {REVEAL_REASON_MAX_LENGTH} characters."
    if errors:
        raise ValidationError(errors)
    supervisor = user_has_tenant_perm(user=actor, tenant=case.tenant, perm=CASE_SUPERVISE_PERM)
    strength = case_strength(case)
    verified = strength is not None and (strength != VerificationStrength.WEAK or knowledge_allows(case, "reveal"))
    if not (strength is not None or supervisor):
        raise RevealRefused(
            "The customer is not verified in this case: verify them first, or ask a supervisor to look."
        )
    if not (verified or supervisor):  # verified weakly, and the tenant's policy does not accept it for this
        raise RevealRefused(
            "The customer is verified by knowledge questions only, which this client's policy does not accept for "
            "showing personal data: verify them with a code to a channel on file or a callback, or ask a supervisor."
        )
    now = timezone.now()
    reveal = CaseReveal.objects.create(
        case=case,
        actor=actor,
        field=field,
        reason_code=reason_code,
        reason_text=reason_text,
        created_at=now,
        expires_at=now + timedelta(minutes=REVEAL_MINUTES),
    )
    value = customer_fields_clear(customer_id=case.customer_id, fields=[field])[field]
    audit_record(
        action=Action.REVEAL,
        actor=actor,
        tenant=case.tenant,
        target=case,
        reason=f"{RevealReason(reason_code).label}: {reason_text}",
        metadata={
            "field": field,
            "reason_code": reason_code,
            "customer": case.customer_id,
            "expires_at": reveal.expires_at.isoformat(),
            "allowed_as": ("verified customer" + (" (weak)" if strength == VerificationStrength.WEAK else ""))
            if verified
            else "supervisor",
        },
    )
    _case_announce(case)
    return value, reveal


@transaction.atomic
def concern_raise(*, actor: User, case: Case, kind: str, note: str = "") -> SecurityConcern:
    """Flag a contact on the case as suspected social engineering or phishing: a review item for the
    tenant's supervisors, who hear of it live once this commits."""
    note = note.strip() if isinstance(note, str) else ""
    if kind not in ConcernKind.values:
        raise ValidationError({"kind": f"Give one of {', '.join(ConcernKind.values)}."})
    if len(note) > CONCERN_NOTE_MAX_LENGTH:
        raise ValidationError({"note": f"Keep the note under {CONCERN_NOTE_MAX_LENGTH:,} characters."})
    concern = SecurityConcern.objects.create(
        tenant_id=case.tenant_id, case=case, raised_by=actor, kind=kind, note=note, created_at=timezone.now()
    )
    audit_record(
        action=Action.CREATE,
        actor=actor,
        tenant=case.tenant,
        target=concern,
        changes=audit_diff({}, {"kind": kind, "status": concern.status}),
        metadata={"case": case.pk},
    )
    push.concern_raised(tenant_id=case.tenant_id, concern_id=concern.pk, case_id=case.pk, kind=kind)
    _case_announce(case)
    return concern


@transaction.atomic
def concern_raise_by_desk(
    *, case: Case, note: str, trigger: str, once: bool = True, **metadata
) -> SecurityConcern | None:
    """A social-engineering concern the desk raises itself (no staff member: raised_by is None), on
    a pattern of an attack (repeated wrong codes, a contact change asked for before verification);
    supervisors hear of it live, as of any concern. One open desk-raised concern per case (`once`):
    None when there is one already; `once=False` for a trigger each of whose occurrences matters (a
    customer's "No" to a change the desk was about to make)."""
    if (
        once
        and SecurityConcern.objects.filter(
            case=case, kind=ConcernKind.SOCIAL_ENGINEERING, raised_by__isnull=True, status=ConcernStatus.OPEN
        ).exists()
    ):
        return None
    concern = SecurityConcern.objects.create(
        tenant_id=case.tenant_id, case=case, raised_by=None, kind=ConcernKind.SOCIAL_ENGINEERING,
        note=f"Raised by AlertDesk: {note}"[:CONCERN_NOTE_MAX_LENGTH], created_at=timezone.now(),
    )  # fmt: skip
    audit_record(
        action=Action.CREATE, actor=None, tenant=case.tenant, target=concern,
        changes=audit_diff({}, {"kind": concern.kind, "status": concern.status}),
        metadata={"case": case.pk, "raised_by": "system", "trigger": trigger, **metadata},
    )  # fmt: skip
    push.concern_raised(tenant_id=case.tenant_id, concern_id=concern.pk, case_id=case.pk, kind=concern.kind)
    return concern


@transaction.atomic
def concern_review(*, actor: User, concern: SecurityConcern, note: str = "") -> SecurityConcern:
    """A supervisor has looked into the concern. Reviewing it twice changes nothing."""
    note = note.strip() if isinstance(note, str) else ""
    if len(note) > CONCERN_NOTE_MAX_LENGTH:
        raise ValidationError({"note": f"Keep the note under {CONCERN_NOTE_MAX_LENGTH:,} characters."})
    if not user_has_tenant_perm(user=actor, tenant=concern.tenant, perm=CASE_SUPERVISE_PERM):
        raise PermissionDenied("Only a supervisor of this client reviews its security concerns.")
    locked = SecurityConcern.objects.select_for_update().get(pk=concern.pk)
    if locked.status == ConcernStatus.REVIEWED:
        return locked
    locked.status, locked.reviewed_by, locked.reviewed_at, locked.review_note = (
        ConcernStatus.REVIEWED, actor, timezone.now(), note,
    )  # fmt: skip
    locked.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])
    audit_record(
        action=Action.UPDATE,
        actor=actor,
        tenant=concern.tenant,
        target=locked,
        changes=audit_diff({"status": ConcernStatus.OPEN}, {"status": ConcernStatus.REVIEWED}),
        reason=note,
        metadata={"case": locked.case_id},
    )
    return locked


@transaction.atomic
def playbook_step_check(*, actor: User, case: Case, alert_type: str, step_key: str) -> PlaybookCheck:
    """Tick a step of the playbook of one of the case's alert types: who and when, with the step's
    text as it reads now (for QA). Ticking it again changes nothing."""
    if not isinstance(alert_type, str) or not isinstance(step_key, str):
        raise ValidationError({"step": "No such step in this case's playbooks."})
    if not CaseAlert.objects.filter(case=case, alert__type=alert_type).exists():
        raise ValidationError({"alert_type": "This case has no alert of that type."})
    checklist = playbook_checklist(tenant_id=case.tenant_id, alert_type=alert_type)
    step = checklist.step(step_key) if checklist is not None else None
    if step is None:
        raise ValidationError({"step": "No such step in this case's playbooks."})
    existing = PlaybookCheck.objects.filter(case=case, alert_type=alert_type, step_key=step_key).first()
    if existing is not None:
        return existing
    check = PlaybookCheck(
        case=case, alert_type=alert_type, step_key=step_key, step_text=step.text[:500], checked_by=actor,
        checked_at=timezone.now(),
    )  # fmt: skip
    try:
        with transaction.atomic():
            check.save(force_insert=True)
    except IntegrityError:  # ticked at the same moment by someone else: theirs stands
        return PlaybookCheck.objects.get(case=case, alert_type=alert_type, step_key=step_key)
    audit_record(
        action=Action.CREATE,
        actor=actor,
        tenant=case.tenant,
        target=check,
        changes=audit_diff({}, {"step": step_key}),
        metadata={"case": case.pk, "alert_type": alert_type, "step": step_key},
    )
    _case_announce(case)
    return check


PLAYBOOK_STEPS_MAX = 20
PLAYBOOK_STEP_MAX_LENGTH = 300


def _playbook_lines(name: str, lines, *, required: bool) -> list[str]:
    if not isinstance(lines, list | tuple) or not all(isinstance(line, str) for line in lines):
        raise ValidationError({name: "Give a list of steps."})
    cleaned = [line.strip() for line in lines if line.strip()]
    if required and not cleaned:
        raise ValidationError({name: "Give at least one step."})
    if len(cleaned) > PLAYBOOK_STEPS_MAX:
        raise ValidationError({name: f"Keep it to {PLAYBOOK_STEPS_MAX} steps at most."})
    if any(len(line) > PLAYBOOK_STEP_MAX_LENGTH for line in cleaned):
        raise ValidationError({name: f"Keep each step under {PLAYBOOK_STEP_MAX_LENGTH} characters."})
    return list(dict.fromkeys(cleaned))


@transaction.atomic
def playbook_override_set(
    *, actor: User, tenant: Tenant, alert_type: str, verify, tell, never_ask, customer_steps
) -> PlaybookOverride:
    """A tenant admin's own playbook for one alert type, in place of the default. It must say what
    to verify; the defaults' "never ask for" list stays whatever it says (it can only add to it)."""
    if not user_has_tenant_perm(user=actor, tenant=tenant, perm=PLAYBOOK_EDIT_PERM):
        raise PermissionDenied("Only an admin of this client edits its playbooks.")
    if alert_type not in PLAYBOOKS:
        raise ValidationError({"alert_type": "No such alert type."})
    after = {
        "verify": _playbook_lines("verify", verify, required=True),
        "tell": _playbook_lines("tell", tell, required=False),
        "never_ask": _playbook_lines("never_ask", never_ask, required=False),
        "customer_steps": _playbook_lines("customer_steps", customer_steps, required=True),
    }
    override = PlaybookOverride.objects.select_for_update().filter(tenant=tenant, alert_type=alert_type).first()
    before = {} if override is None else {name: getattr(override, name) for name in after}
    changes = audit_diff(before, after)
    if override is None:
        override = PlaybookOverride(tenant=tenant, alert_type=alert_type)
    if changes:
        for name, value in after.items():
            setattr(override, name, value)
        override.updated_at, override.updated_by = timezone.now(), actor
        override.save()
        audit_record(
            action=Action.UPDATE if before else Action.CREATE,
            actor=actor,
            tenant=tenant,
            target=override,
            changes=changes,
        )
    return override


@transaction.atomic
def playbook_override_clear(*, actor: User, tenant: Tenant, alert_type: str) -> None:
    """Back to the default playbook for this alert type. Checks made against the tenant's steps keep
    the text they were made against."""
    if not user_has_tenant_perm(user=actor, tenant=tenant, perm=PLAYBOOK_EDIT_PERM):
        raise PermissionDenied("Only an admin of this client edits its playbooks.")
    override = PlaybookOverride.objects.select_for_update().filter(tenant=tenant, alert_type=alert_type).first()
    if override is None:
        return
    audit_record(
        action=Action.DELETE,
        actor=actor,
        tenant=tenant,
        target=override,
        changes=audit_diff({n: getattr(override, n) for n in ("verify", "tell", "never_ask", "customer_steps")}, {}),
    )
    override.delete()
