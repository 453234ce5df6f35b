"""Every write to queues and queue grants: audited in the same transaction, announced after commit."""

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm
from guardian.utils import get_user_obj_perms_model

from accounts.models import Membership, Tenant, User
from accounts.selectors import user_has_tenant_perm
from alerts.models import ACTIVE_STATUSES, Alert, AlertType, Severity
from alerts.selectors import ALERT_CHANGE_PERM
from alerts.services import AlertClaimConflict, alert_claim
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record
from config import push
from desk.models import Queue
from desk.selectors import QUEUE_ORDER_BY, queue_alerts_q

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
