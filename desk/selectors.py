"""Reads of queues, where alerts fall among them, and the access functions for queues.

Placement is computed, never stored: an alert belongs to the most specific queue of its tenant
whose filter it matches, else to the tenant's default queue. `queue_alerts_q` says it as a query
over alerts (for lists and counts), `queue_for_alert` in Python for one alert; both use the same
order of specificity, and a property test holds them to each other.
"""

from collections.abc import Iterable, Sequence

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from accounts.models import Membership, User
from accounts.selectors import tenant_ids_with_perm
from alerts.models import ACTIVE_STATUSES, Alert, AlertStatus
from desk.models import Queue

QUEUE_VIEW_PERM = "desk.view_queue"  # supervisors and admins: every queue of their tenants
QUEUE_WORK_PERM = "desk.work_queue"  # agents: a guardian object permission on each granted queue

# Active alerts in the order a queue is worked: most severe first, then the oldest (SLA due time
# comes in between once alerts have one). Served by alerts' alert_active_queue_order_idx.
QUEUE_ORDER = ("-severity", "first_seen_at", "id")


def queue_specificity(queue: Queue) -> tuple:
    """Sort key: the most specific queue first. A non-default queue before the default; more
    constraints (types given, minimum severity given) first; then fewer types, then a higher
    minimum severity, then the older queue (lower id)."""
    constraints = bool(queue.alert_types) + (queue.min_severity is not None)
    n_types = len(queue.alert_types) if queue.alert_types else float("inf")
    return (queue.is_default, -constraints, n_types, -(queue.min_severity or 0), queue.pk)


def _own_filter(queue: Queue) -> Q:
    """The queue's own filter within its tenant (nothing for the default queue)."""
    q = Q()
    if queue.is_default:
        return q
    if queue.alert_types:
        q &= Q(type__in=list(queue.alert_types))
    if queue.min_severity is not None:
        q &= Q(severity__gte=queue.min_severity)
    return q


def _matches(queue: Queue, alert: Alert) -> bool:
    if queue.is_default:
        return True
    if queue.alert_types and alert.type not in queue.alert_types:
        return False
    return queue.min_severity is None or alert.severity >= queue.min_severity


def queue_alerts_q(queue: Queue, siblings: Iterable[Queue]) -> Q:
    """The alerts that belong to `queue`, as a filter over Alert: the queue's tenant and filter, and
    none of the filters of the queues of the same tenant that are more specific than it.
    `siblings`: the queues of the tenant (others of other tenants are ignored), fetched once."""
    key = queue_specificity(queue)
    q = Q(tenant_id=queue.tenant_id) & _own_filter(queue)
    for other in siblings:
        if other.tenant_id == queue.tenant_id and other.pk != queue.pk and queue_specificity(other) < key:
            # A more specific queue without a filter cannot exist (constraint), so `~` never empties all.
            q &= ~_own_filter(other)
    return q


def queue_for_alert(alert: Alert, queues: Iterable[Queue]) -> Queue | None:
    """The queue `alert` belongs to among `queues` (its tenant's; others are ignored), or None when
    the tenant has no queue that takes it (no default queue)."""
    for queue in sorted((q for q in queues if q.tenant_id == alert.tenant_id), key=queue_specificity):
        if _matches(queue, alert):
            return queue
    return None


def queue_list_for(*, user: User) -> QuerySet[Queue]:
    """The queues `user` may see: every queue of the active tenants where their role carries
    desk.view_queue (supervisors, admins, BPO admins), and the queues they are granted
    desk.work_queue on (agents) in active tenants they are still members of. Deny by default:
    anything else is none."""
    if not (user.is_authenticated and user.is_active):
        return Queue.objects.none()
    supervised = tenant_ids_with_perm(user=user, perm=QUEUE_VIEW_PERM)
    granted = get_objects_for_user(
        user, QUEUE_WORK_PERM, klass=Queue, accept_global_perms=False, with_superuser=False
    ).filter(
        tenant__is_active=True,
        tenant_id__in=Membership.objects.filter(user=user).values("tenant_id"),
    )
    return (
        Queue.objects.filter(Q(tenant_id__in=supervised) | Q(pk__in=granted.values("pk")))
        .select_related("tenant")
        .order_by("tenant__name", "-is_default", "name", "pk")
    )


def queue_get_for(*, user: User, queue_id) -> Queue:
    """One queue `user` may see. Missing and forbidden both raise Http404."""
    try:
        return queue_list_for(user=user).get(pk=int(queue_id))
    except (Queue.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("No such queue.") from None


def queue_siblings(queues: Sequence[Queue]) -> list[Queue]:
    """Every queue of the tenants of `queues` (placement needs them all, granted or not): one query."""
    return list(Queue.objects.filter(tenant_id__in={q.tenant_id for q in queues}))


def queue_alerts(*, queue: Queue, siblings: Iterable[Queue]) -> QuerySet[Alert]:
    """The queue's active alerts in queue order. Call it with a queue from queue_get_for."""
    return (
        Alert.objects.filter(queue_alerts_q(queue, siblings), status__in=ACTIVE_STATUSES)
        .select_related("tenant", "customer")
        .order_by(*QUEUE_ORDER)
    )


def queue_counts(*, queues: Sequence[Queue], siblings: Iterable[Queue]) -> dict[int, dict[str, int]]:
    """{queue id: {"active", "unassigned"}} for `queues`, in one grouped query. There is no
    assignee yet (claiming comes next): "unassigned" counts the open ones, which nobody has
    acknowledged."""
    if not queues:
        return {}
    siblings = list(siblings)
    aggregates = {}
    for queue in queues:
        q = queue_alerts_q(queue, siblings)
        aggregates[f"a{queue.pk}"] = Count("pk", filter=q)
        aggregates[f"u{queue.pk}"] = Count("pk", filter=q & Q(status=AlertStatus.OPEN))
    row = Alert.objects.filter(tenant_id__in={q.tenant_id for q in queues}, status__in=ACTIVE_STATUSES).aggregate(
        **aggregates
    )
    return {q.pk: {"active": row[f"a{q.pk}"], "unassigned": row[f"u{q.pk}"]} for q in queues}


def queues_of_tenants(*, tenant_ids) -> list[Queue]:
    """Every queue of these tenants, for placing alerts (desk.live): no access check, it serves no one
    directly; a connection hears only the queues queue_list_for gives it."""
    return list(Queue.objects.filter(tenant_id__in=tenant_ids))
