"""Reads of queues, where alerts fall among them, and the access functions for queues.

Placement is computed, never stored: an alert belongs to the most specific queue of its tenant
whose filter it matches, else to the tenant's default queue. `queue_alerts_q` says it as a query
over alerts (for lists and counts), `queue_for_alert` in Python for one alert; both use the same
order of specificity, and a property test holds them to each other.
"""

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import BooleanField, Count, ExpressionWrapper, F, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user

from accounts.models import User
from accounts.selectors import request_memo, tenant_access_for
from alerts.models import ACTIVE_STATUSES, Alert, AlertType, Customer, Severity
from alerts.selectors import ENCRYPTED_CUSTOMER_FIELDS
from desk.models import Queue

QUEUE_VIEW_PERM = "desk.view_queue"  # supervisors and admins: every queue of their tenants
QUEUE_WORK_PERM = "desk.work_queue"  # agents: a guardian object permission on each granted queue

# Active alerts in the order a queue is worked (contract: severity, then SLA due time, then age):
# most severe first, then the soonest due, then the oldest, the id breaking ties. Served by alerts'
# alert_active_queue_order_idx. Active alerts all have a due time; one without (made before SLAs,
# or in SQL) comes last of its severity, on both databases (PostgreSQL's default for ASC too).
QUEUE_ORDER = ("-severity", "sla_due_at", "first_seen_at", "id")
QUEUE_ORDER_BY = (F("severity").desc(), F("sla_due_at").asc(nulls_last=True), F("first_seen_at").asc(), F("id").asc())


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


QUEUE_LIST_ORDER = ("tenant__name", "-is_default", "name", "pk")


@dataclass(frozen=True)
class _QueueSight:
    """Which queues a user may see: every queue of the active tenants where their role carries
    desk.view_queue (supervisors, admins, BPO admins), and the queues they are granted
    desk.work_queue on (agents) in active tenants they are still members of. Deny by default: for
    anyone else, none. The one rule behind queue_list_for (as a filter, `q`) and queue_scope_for
    (over queues read with their grant, `sees`)."""

    supervised: frozenset[int]
    member_of: frozenset[int]  # their memberships of active tenants: where a grant counts
    user: User

    @classmethod
    def of(cls, user: User) -> "_QueueSight":
        access = tenant_access_for(user=user)
        return cls(frozenset(access.tenant_ids_with_perm(QUEUE_VIEW_PERM)), frozenset(access.roles), user)

    def granted(self) -> QuerySet[Queue]:
        """The queues granted to the user (guardian object permissions), wherever they are."""
        return get_objects_for_user(
            self.user, QUEUE_WORK_PERM, klass=Queue, accept_global_perms=False, with_superuser=False
        )

    def q(self) -> Q:
        granted = self.granted().filter(tenant_id__in=self.member_of)
        return Q(tenant_id__in=self.supervised) | Q(pk__in=granted.values("pk"))

    def sees(self, queue: Queue, *, granted: bool) -> bool:
        return queue.tenant_id in self.supervised or (granted and queue.tenant_id in self.member_of)


def queue_list_for(*, user: User) -> QuerySet[Queue]:
    """The queues `user` may see (see _QueueSight), by tenant name, the default queue first."""
    if not (user.is_authenticated and user.is_active):
        return Queue.objects.none()
    return Queue.objects.filter(_QueueSight.of(user).q()).select_related("tenant").order_by(*QUEUE_LIST_ORDER)


def queue_get_for(*, user: User, queue_id) -> Queue:
    """One queue `user` may see. Missing and forbidden both raise Http404."""
    try:
        return queue_list_for(user=user).get(pk=int(queue_id))
    except (Queue.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("No such queue.") from None


@dataclass(frozen=True)
class QueueScope:
    """The queues a user may see (`queues`, as queue_list_for lists them) and every queue of their
    tenants (`siblings`: placing alerts needs them all, granted or not)."""

    queues: list[Queue]
    siblings: list[Queue]


def queue_scope_for(*, user: User) -> QueueScope:
    """queue_list_for and queue_siblings of its answer, in one query: the queues of the tenants where
    `user` may see some (supervised, or a member's, where a grant counts), each with whether it is
    granted to them; _QueueSight.sees then says which they see, as its filter does for
    queue_list_for. Read once a request (the queue page and the alert access scope both ask), like
    tenant_access_for."""
    memo = request_memo(user)
    if memo is not None and "queue_scope" in memo:
        return memo["queue_scope"]
    if not (user.is_authenticated and user.is_active):
        scope = QueueScope(queues=[], siblings=[])
    else:
        sight = _QueueSight.of(user)
        rows = list(
            Queue.objects.filter(tenant_id__in=sight.supervised | sight.member_of)
            .annotate(granted=ExpressionWrapper(Q(pk__in=sight.granted().values("pk")), output_field=BooleanField()))
            .select_related("tenant")
            .order_by(*QUEUE_LIST_ORDER)
        )
        queues = [q for q in rows if sight.sees(q, granted=q.granted)]
        tenants = {q.tenant_id for q in queues}
        scope = QueueScope(queues=queues, siblings=[q for q in rows if q.tenant_id in tenants])
    if memo is not None:
        memo["queue_scope"] = scope
    return scope


def alert_queue_scope(*, user: User, tenant_ids: list[int]) -> Q:
    """The desk's narrowing of alert access (registered with alerts.selectors.alert_scope_register):
    in the tenants where `user` may see every queue (supervisors, admins), every alert; elsewhere
    only the alerts of the queues granted to them, so an alert in an ungranted queue is as missing
    as another tenant's. At most two queries (none more in a request), whatever the data."""
    supervised = [pk for pk in tenant_access_for(user=user).tenant_ids_with_perm(QUEUE_VIEW_PERM) if pk in tenant_ids]
    q = Q(tenant_id__in=supervised)
    scope = queue_scope_for(user=user)
    for queue in scope.queues:
        if queue.tenant_id in tenant_ids and queue.tenant_id not in supervised:
            q |= queue_alerts_q(queue, scope.siblings)
    return q


def queue_pick(queues: Iterable[Queue], queue_id) -> Queue:
    """The queue `queue_id` among `queues` from queue_list_for (a page that lists them anyway
    saves the second query of queue_get_for). Missing and forbidden both raise Http404."""
    for queue in queues:
        if str(queue.pk) == str(queue_id):
            return queue
    raise Http404("No such queue.")


def queue_siblings(queues: Sequence[Queue]) -> list[Queue]:
    """Every queue of the tenants of `queues` (placement needs them all, granted or not): one query."""
    return list(Queue.objects.filter(tenant_id__in={q.tenant_id for q in queues}))


def queue_alerts(*, queue: Queue, siblings: Iterable[Queue]) -> QuerySet[Alert]:
    """The queue's active alerts in queue order. Call it with a queue from queue_get_for."""
    return (
        Alert.objects.filter(queue_alerts_q(queue, siblings), status__in=ACTIVE_STATUSES)
        .select_related("tenant", "customer", "assignee")
        .defer(*(f"customer__{name}" for name in ENCRYPTED_CUSTOMER_FIELDS))  # lists show the masked forms
        .order_by(*QUEUE_ORDER_BY)
    )


class InvalidPositionError(ValueError):
    """A queue cursor that does not decode to a position in queue order."""


@dataclass(frozen=True)
class QueuePosition:
    """Where a keyset page of a queue ends: the queue-order key of its last alert. Encoded as
    url-safe base64 of a JSON list, for the API's `cursor` and the page's "Older" link."""

    severity: int
    sla_due_at: datetime | None
    first_seen_at: datetime
    pk: int

    @classmethod
    def of(cls, alert: Alert) -> "QueuePosition":
        return cls(alert.severity, alert.sla_due_at, alert.first_seen_at, alert.pk)

    def encode(self) -> str:
        due = self.sla_due_at.isoformat() if self.sla_due_at is not None else None
        raw = json.dumps([self.severity, due, self.first_seen_at.isoformat(), self.pk], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> "QueuePosition":
        """The position, or InvalidPositionError for anything that is not exactly one."""
        try:
            if len(value) > 300:
                raise ValueError
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            severity, due, seen, pk = json.loads(raw)
            due_at = datetime.fromisoformat(due) if due is not None else None
            seen_at = datetime.fromisoformat(seen)
            ok = (
                type(severity) is int
                and severity in Severity.values
                and type(pk) is int
                and 0 < pk < 2**63
                and seen_at.tzinfo is not None
                and (due_at is None or due_at.tzinfo is not None)
            )
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            ok = False
        if not ok:
            raise InvalidPositionError("Invalid cursor")
        return cls(severity, due_at, seen_at, pk)

    def after_q(self) -> Q:
        """The alerts after this position in queue order (a NULL due time sorts last)."""
        s, due, seen, pk = self.severity, self.sla_due_at, self.first_seen_at, self.pk
        same_due = Q(sla_due_at__isnull=True) if due is None else Q(sla_due_at=due)
        later = Q(first_seen_at__gt=seen) | Q(first_seen_at=seen, pk__gt=pk)
        q = Q(severity__lt=s) | (Q(severity=s) & same_due & later)
        if due is not None:
            q |= Q(severity=s) & (Q(sla_due_at__gt=due) | Q(sla_due_at__isnull=True))
        return q


@dataclass(frozen=True)
class QueueFilters:
    """What a queue list may be narrowed to. `customer_ids`: from customer_ids_by_external_id (a
    subquery) or ids; none (a search that found nobody) matches nothing, None does not filter."""

    type: str = ""
    severity: int | None = None
    status: str = ""
    assignee_id: int | None = None  # "mine"
    unassigned: bool = False
    customer_ids: "QuerySet[Customer] | tuple[int, ...] | None" = None

    def q(self) -> Q:
        q = Q()
        if self.type in AlertType.values:
            q &= Q(type=self.type)
        if self.severity in Severity.values:
            q &= Q(severity=self.severity)
        if self.status in ACTIVE_STATUSES:
            q &= Q(status=self.status)
        if self.assignee_id is not None:
            q &= Q(assignee_id=self.assignee_id)
        if self.unassigned:
            q &= Q(assignee__isnull=True)
        if self.customer_ids is not None:
            ids = self.customer_ids
            q &= Q(customer_id__in=ids if isinstance(ids, QuerySet) else list(ids))
        return q


def customer_ids_by_external_id(*, tenant_id: int, external_id: str) -> QuerySet[Customer]:
    """The customer of one tenant with this client account id (exact match, served by the
    (tenant, external_id) unique index), as a subquery of ids to filter alerts by: it runs inside
    the page's query, not before it. Nobody when there is none."""
    if not external_id:
        return Customer.objects.none().values("pk")
    return Customer.objects.filter(tenant_id=tenant_id, external_id=external_id).values("pk")


def queue_alert_get(*, queue: Queue, siblings: Iterable[Queue], alert_id) -> Alert:
    """One active alert of `queue` (from queue_get_for). Missing, elsewhere or final: Http404."""
    try:
        return queue_alerts(queue=queue, siblings=siblings).get(pk=int(alert_id))
    except (Alert.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("No such alert in this queue.") from None


def queue_alerts_page(
    *,
    queue: Queue,
    siblings: Iterable[Queue],
    after: QueuePosition | None = None,
    size: int,
    filters: QueueFilters | None = None,
    only: Sequence[str] | None = None,
) -> tuple[list[Alert], QueuePosition | None]:
    """One keyset page of the queue's active alerts in queue order, after `after`: the alerts, and
    the position to ask the next page from (None on the last page). One query, whatever the depth.
    `only`: the fields the caller shows (with "customer__..." and "assignee__..."), for a list
    that shows a few columns of many rows; the queue order's own fields are always read. The
    alerts' tenant is the queue's (placement is within a tenant): given, not read again."""
    alerts = queue_alerts(queue=queue, siblings=siblings).select_related(None).select_related("customer", "assignee")
    if only is not None:
        alerts = alerts.only(*_ORDER_FIELDS, "tenant", "customer", "assignee", *only)
    if filters is not None:
        alerts = alerts.filter(filters.q())
    if after is not None:
        alerts = alerts.filter(after.after_q())
    rows = list(alerts[: size + 1])
    for alert in rows:
        alert.tenant = queue.tenant
    if len(rows) > size:
        rows = rows[:size]
        return rows, QueuePosition.of(rows[-1])
    return rows, None


_ORDER_FIELDS = ("severity", "sla_due_at", "first_seen_at")  # and the id: QueuePosition's


def queue_counts(*, queues: Sequence[Queue], siblings: Iterable[Queue]) -> dict[int, dict[str, int]]:
    """{queue id: {"active", "unassigned", "breaching"}} for `queues`, in one grouped query:
    "unassigned" is the active alerts nobody holds, "breaching" those past their SLA due time."""
    if not queues:
        return {}
    siblings = list(siblings)
    now = timezone.now()
    aggregates = {}
    for queue in queues:
        q = queue_alerts_q(queue, siblings)
        aggregates[f"a{queue.pk}"] = Count("pk", filter=q)
        aggregates[f"u{queue.pk}"] = Count("pk", filter=q & Q(assignee__isnull=True))
        aggregates[f"b{queue.pk}"] = Count("pk", filter=q & Q(sla_due_at__lt=now))
    row = Alert.objects.filter(tenant_id__in={q.tenant_id for q in queues}, status__in=ACTIVE_STATUSES).aggregate(
        **aggregates
    )
    return {
        q.pk: {"active": row[f"a{q.pk}"], "unassigned": row[f"u{q.pk}"], "breaching": row[f"b{q.pk}"]} for q in queues
    }


def queues_of_tenants(*, tenant_ids) -> list[Queue]:
    """Every queue of these tenants, for placing alerts (desk.live): no access check, it serves no one
    directly; a connection hears only the queues queue_list_for gives it."""
    return list(Queue.objects.filter(tenant_id__in=tenant_ids))
