"""Reads of queues, where alerts fall among them, and the access functions for queues.

Placement is computed, never stored: an alert belongs to the most specific queue of its tenant
whose filter it matches, else to the tenant's default queue. `queue_alerts_q` says it as a query
over alerts (for lists and counts), `queue_for_alert` in Python for one alert; both use the same
order of specificity, and a property test holds them to each other.
"""

import base64
import binascii
import functools
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import DataError, connection
from django.db.models import (
    CharField,
    Count,
    F,
    Min,
    Prefetch,
    Q,
    QuerySet,
)
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission
from guardian.shortcuts import get_users_with_perms

from accounts.models import Membership, User
from accounts.selectors import (
    bpo_admin_has_perm,
    request_memo,
    tenant_access_for,
    tenant_ids_with_perm,
    tenant_of,
    user_has_tenant_perm,
)
from alerts.models import ACTIVE_STATUSES, AccountEvent, Alert, AlertType, Customer, Severity
from alerts.notifications.models import Notification
from alerts.selectors import ENCRYPTED_CUSTOMER_FIELDS
from audit.models import Action, AuditEvent
from config.sql import ModelRead, field_column
from desk.actions import ACTIONS
from desk.models import (
    ACTION_PENDING_STATES,
    METHOD_STRENGTH,
    OPEN_CASE_STATUSES,
    AccountAction,
    ActionSettings,
    Case,
    CaseAlert,
    CaseNote,
    CaseReveal,
    ConcernStatus,
    PlaybookCheck,
    PlaybookOverride,
    Queue,
    SecurityConcern,
    Verification,
)
from desk.playbooks import PLAYBOOKS, Checklist
from desk.queue_reads import CaseSight, customer_open_case_sql, queue_count_groups

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


@functools.cache
def _grant_sql() -> str:
    user_perms, group_perms = UserObjectPermission._meta.db_table, GroupObjectPermission._meta.db_table
    permissions = UserObjectPermission._meta.get_field("permission").related_model._meta.db_table
    user_groups = User.groups.through._meta.db_table
    return f"""
        SELECT CAST(u.object_pk AS bigint) FROM {user_perms} u JOIN {permissions} p ON p.id = u.permission_id
        WHERE u.user_id = %s AND p.content_type_id = %s AND p.codename = %s
        UNION ALL
        SELECT CAST(g.object_pk AS bigint) FROM {group_perms} g JOIN {permissions} p ON p.id = g.permission_id
        JOIN {user_groups} ug ON ug.group_id = g.group_id
        WHERE ug.user_id = %s AND p.content_type_id = %s AND p.codename = %s
    """  # noqa: S608 (table names from model metadata; values are parameters)


def _grant_ids(user: User, perm: str, model) -> RawSQL:
    """The ids of the `model` objects on which `user` holds the guardian object permission `perm`
    ("app_label.codename"), granted to them or to a group of theirs, as a subquery: guardian's
    tables read as get_objects_for_user(accept_global_perms=False, with_superuser=False) reads
    them, without the millisecond of Python it spent building its filter on every page."""
    codename = perm.split(".", 1)[1]
    content_type = ContentType.objects.get_for_model(model).pk  # cached by the process
    return RawSQL(_grant_sql(), (user.pk, content_type, codename, user.pk, content_type, codename))  # noqa: S611 (values are parameters)


def _granted(user: User, perm: str, model) -> QuerySet:
    """The objects of `model` (a queue, a case) `user` holds the guardian object permission `perm`
    on, in active tenants they are still members of: a grant outlives neither."""
    return model.objects.filter(
        pk__in=_grant_ids(user, perm, model),
        tenant__is_active=True,
        tenant_id__in=Membership.objects.filter(user=user).values("tenant_id"),
    )


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

    def granted(self) -> RawSQL:
        """The ids of the queues granted to the user (guardian object permissions), wherever they are."""
        return _grant_ids(self.user, QUEUE_WORK_PERM, Queue)

    def q(self) -> Q:
        return Q(tenant_id__in=self.supervised) | Q(pk__in=self.granted(), tenant_id__in=self.member_of)

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
        rows = _queues_with_grant(user, sorted(sight.supervised | sight.member_of))
        queues = [q for q in rows if sight.sees(q, granted=q.granted)]
        tenants = {q.tenant_id for q in queues}
        scope = QueueScope(queues=queues, siblings=[q for q in rows if q.tenant_id in tenants])
    if memo is not None:
        memo["queue_scope"] = scope
    return scope


_QUEUES = ModelRead(Queue, alias="q")


def _queues_with_grant(user: User, tenant_ids: list[int]) -> list[Queue]:
    """Every queue of these tenants, in QUEUE_LIST_ORDER, each with `granted` (whether `user` holds
    desk.work_queue on it) and its tenant from the request's access read: one statement, written
    in SQL (through the ORM, compiling it cost more than running it, on every page)."""
    if not tenant_ids:
        return []
    content_type = ContentType.objects.get_for_model(Queue).pk  # cached by the process
    codename = QUEUE_WORK_PERM.split(".", 1)[1]
    grant = (user.pk, content_type, codename, user.pk, content_type, codename)
    tenant_table = Queue._meta.get_field("tenant").related_model._meta.db_table
    queues = _QUEUES.rows(
        f"q.tenant_id IN ({', '.join(['%s'] * len(tenant_ids))})",
        tenant_ids,
        "ORDER BY t.name, q.is_default DESC, q.name, q.id",
        extra=[("granted", f"q.id IN ({_grant_sql()})", grant)],
        joins=(f"JOIN {tenant_table} t ON t.id = q.tenant_id", []),
    )
    tenants = {t.pk: t for t in tenant_access_for(user=user).tenants}
    for queue in queues:
        queue.granted = bool(queue.granted)  # SQLite answers 0 or 1
        if queue.tenant_id in tenants:  # always: the tenants are the user's (else read as usual)
            queue.tenant = tenants[queue.tenant_id]
    return queues


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


def alert_queue_allows(*, user: User, tenant_ids: list[int], alert: Alert) -> bool:
    """alert_queue_scope for one alert already read: in a tenant where `user` sees every queue, yes;
    elsewhere only when the queue it belongs to (queue_for_alert) is one of theirs."""
    if alert.tenant_id not in tenant_ids:
        return False
    if alert.tenant_id in tenant_access_for(user=user).tenant_ids_with_perm(QUEUE_VIEW_PERM):
        return True
    scope = queue_scope_for(user=user)
    queue = queue_for_alert(alert, scope.siblings)
    return queue is not None and any(q.pk == queue.pk for q in scope.queues)


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
    """What a queue list may be narrowed to. `customer`: the client account id searched for, the
    customer of the queue's tenant with exactly that id (nobody matches when there is none); None
    does not filter."""

    type: str = ""
    severity: int | None = None
    status: str = ""
    assignee_id: int | None = None  # "mine"
    unassigned: bool = False
    customer: str | None = None

    def q(self, *, tenant_id: int) -> Q:
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
        if self.customer is not None:
            q &= Q(customer_id__in=customer_ids_by_external_id(tenant_id=tenant_id, external_id=self.customer))
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
) -> tuple[list[Alert], QueuePosition | None]:
    """One keyset page of the queue's active alerts in queue order, after `after`: the alerts, and
    the position to ask the next page from (None on the last page). One query, whatever the depth.
    The alerts' tenant is the queue's (placement is within a tenant): given, not read again. The
    staff API's page; the desk's queue page reads the same rows in SQL (queue_reads.queue_rows_page)."""
    alerts = queue_alerts(queue=queue, siblings=siblings).select_related(None).select_related("customer", "assignee")
    if filters is not None:
        alerts = alerts.filter(filters.q(tenant_id=queue.tenant_id))
    if after is not None:
        alerts = alerts.filter(after.after_q())
    rows = list(alerts[: size + 1])
    for alert in rows:
        alert.tenant = queue.tenant
    if len(rows) > size:
        rows = rows[:size]
        return rows, QueuePosition.of(rows[-1])
    return rows, None


class _Kind(NamedTuple):
    """What placement reads of an alert (queue_for_alert): a group of alerts alike in it."""

    tenant_id: int
    type: str
    severity: int


def queue_counts(*, queues: Sequence[Queue], siblings: Iterable[Queue]) -> dict[int, dict[str, int]]:
    """{queue id: {"active", "unassigned", "breaching"}} for `queues`, in one query: "unassigned" is
    the active alerts nobody holds, "breaching" those past their SLA due time. The tenants' active
    alerts are counted by (tenant, type, severity), which is all that placement reads, and each
    group is placed in Python (queue_for_alert, which agrees with queue_alerts_q): at most 32
    groups a tenant, read from the queue-order index alone."""
    if not queues:
        return {}
    siblings = list(siblings)
    now = timezone.now()
    counts = {q.pk: {"active": 0, "unassigned": 0, "breaching": 0} for q in queues}
    groups = queue_count_groups(tenant_ids=sorted({q.tenant_id for q in queues}), now=now)
    for tenant_id, type_, severity, active, unassigned, breaching in groups:
        queue = queue_for_alert(_Kind(tenant_id, type_, severity), siblings)
        if queue is not None and (count := counts.get(queue.pk)) is not None:
            count["active"] += active
            count["unassigned"] += unassigned
            count["breaching"] += breaching
    return counts


def queues_of_tenants(*, tenant_ids) -> list[Queue]:
    """Every queue of these tenants, for placing alerts (desk.live): no access check, it serves no one
    directly; a connection hears only the queues queue_list_for gives it."""
    return list(Queue.objects.filter(tenant_id__in=tenant_ids))


# --- cases ------------------------------------------------------------------------------------------
#
# A case is seen exactly as its queue is: supervisors and admins of the tenant see all its cases,
# agents those of the queues granted to them, and anyone the case itself is shared with (guardian
# object permission desk.work_case) sees that case. Pages, the API, the WebSocket and tasks fetch
# cases only through case_list_for / case_get_for / case_get_to_act.

CASE_CHANGE_PERM = "desk.change_case"  # role: work the cases one sees (agents, supervisors, admins)
CASE_SUPERVISE_PERM = "desk.supervise_case"  # role: share, reveal without verification, review concerns
CASE_WORK_PERM = "desk.work_case"  # guardian object permission: one case shared with a specialist
PLAYBOOK_EDIT_PERM = "desk.change_playbookoverride"  # role: a tenant admin edits the tenant's playbooks


def case_scope_q(*, user: User, queues: Sequence[Queue] | None = None) -> Q:
    """The cases `user` may see, as a filter over Case. Deny by default: nothing for an inactive or
    anonymous user. At most two queries (the supervised tenants); the grants are subqueries.
    `queues`: the queues `user` sees, when the caller has them from queue_scope_for (its
    `queues`): the granted ones among them are given by id rather than read again."""
    if not (user.is_authenticated and user.is_active):
        return Q(pk__in=[])
    if queues is None:
        supervised = tenant_ids_with_perm(user=user, perm=QUEUE_VIEW_PERM)
        granted_queues = _granted(user, QUEUE_WORK_PERM, Queue).values("pk")
        member_of = list(tenant_access_for(user=user).roles)
    else:
        sight = case_sight_for(user=user, queues=queues)
        supervised, granted_queues, member_of = sight.supervised, sight.granted_queues, sight.member_of
    # Shared with them (_granted): in active tenants they are members of, which the access read knows.
    shared = Q(pk__in=_grant_ids(user, CASE_WORK_PERM, Case), tenant_id__in=member_of)
    return Q(tenant_id__in=supervised) | Q(queue_id__in=granted_queues) | shared


def case_sight_for(*, user: User, queues: Sequence[Queue]) -> CaseSight:
    """case_scope_q's rule as the ids it is made of, for a statement written in SQL
    (queue_reads.queue_rows_page). `queues`: the queues `user` sees (queue_scope_for). Deny by
    default: nothing for an inactive or anonymous user."""
    if not (user.is_authenticated and user.is_active):
        return CaseSight(user_id=0, supervised=(), granted_queues=(), member_of=())
    supervised = tuple(tenant_ids_with_perm(user=user, perm=QUEUE_VIEW_PERM))
    # outside the supervised tenants, the queues one sees are the granted ones (_QueueSight)
    granted_queues = tuple(q.pk for q in queues if q.tenant_id not in supervised)
    member_of = tuple(tenant_access_for(user=user).roles)
    return CaseSight(user_id=user.pk, supervised=supervised, granted_queues=granted_queues, member_of=member_of)


def case_list_for(*, user: User) -> QuerySet[Case]:
    """The cases `user` may see, newest first, with their tenant, customer (masked contacts only:
    the encrypted ones are not loaded), queue and assignee."""
    return (
        Case.objects.filter(case_scope_q(user=user))
        .select_related("tenant", "customer", "queue", "assignee")
        .defer(*(f"customer__{name}" for name in ENCRYPTED_CUSTOMER_FIELDS))
        .order_by("-id")
    )


def case_with_alert_ids(cases: QuerySet[Case]) -> QuerySet[Case]:
    """`cases` with the ids of their alerts (`case.case_alerts`), in one more query for a whole page."""
    return cases.prefetch_related(Prefetch("case_alerts", queryset=CaseAlert.objects.only("id", "case_id", "alert_id")))


# The case pages' reads, written in SQL (config.sql.ModelRead): the ORM compiled them for longer
# than the database ran them. Each reads what the ORM's select_related(...).only(...) read before.
_CASE_READ = ModelRead(
    Case,
    related={
        "customer": [f.name for f in Customer._meta.concrete_fields if f.name not in ENCRYPTED_CUSTOMER_FIELDS],
        "queue": None,
        "assignee": None,
    },
)


def case_get_for(*, user: User, case_id) -> Case:
    """One case `user` may see. Missing and forbidden both raise Http404.

    The rule is case_scope_q's, applied to the one case read by id rather than compiled into its
    query (the guardian subqueries cost a page more CPU than the rest of its reads): a case is seen
    in a tenant where the user sees every queue, in a queue they see (queue_scope_for: a granted
    queue of an active tenant they are a member of; read once a request), or when it is shared with
    them (cases_shared_with, asked only then). The case comes with its customer (masked contacts
    only: the encrypted ones are not read), queue and assignee, and its tenant from the user's
    access read."""
    if not (user.is_authenticated and user.is_active):
        raise Http404("No such case.")
    try:
        found = _CASE_READ.rows("t.id = %s", [int(case_id)])
    except (ValueError, TypeError, OverflowError, DataError):  # DataError: beyond the column's range
        found = []
    if not found:
        raise Http404("No such case.")
    case = found[0]
    if not _case_allows(user, case):
        raise Http404("No such case.")
    case.tenant = tenant_of(user=user, tenant_id=case.tenant_id)  # one of theirs: from the access read
    return case


def _case_allows(user: User, case: Case) -> bool:
    if case.tenant_id in tenant_ids_with_perm(user=user, perm=QUEUE_VIEW_PERM):
        return True
    if case.tenant_id in tenant_access_for(user=user).roles and case.queue_id in {
        q.pk for q in queue_scope_for(user=user).queues
    }:
        return True
    return cases_shared_with(user=user).filter(pk=case.pk).exists()


def case_get_to_act(*, user: User, case_id, perm: str = CASE_CHANGE_PERM) -> Case:
    """One case `user` may see, to act on with `perm`: Http404 for a case they cannot see,
    PermissionDenied (403) for one they see with a role that does not carry `perm` in its tenant."""
    case = case_get_for(user=user, case_id=case_id)
    if not user_has_tenant_perm(user=user, tenant=case.tenant, perm=perm):
        raise PermissionDenied("Your role may not do this to cases of this client.")
    return case


def case_is_visible_to(*, user: User, case: Case) -> bool:
    return case_list_for(user=user).filter(pk=case.pk).exists()


def case_is_verified(case: Case, *, now: datetime | None = None) -> bool:
    """Whether the caller is verified as the case's customer now: the one rule that disclosure
    (reveal) and, later, account actions read. Until the verification work sets `verified_until`,
    nobody is."""
    return case.verified_until is not None and case.verified_until > (now or timezone.now())


def case_verification(case: Case, *, now: datetime | None = None) -> dict | None:
    """How the customer was verified (method, at, expires_at), or None while they are not."""
    if not case_is_verified(case, now=now):
        return None
    return {"method": case.verification_method or None, "at": case.verified_at, "expires_at": case.verified_until}


def case_strength(case: Case, *, now: datetime | None = None) -> str | None:
    """How strongly the caller is verified in the case now: "strong", "weak", None (not verified), or
    "" for a method the desk does not know (verified, but never strong enough for a high-risk action)."""
    if not case_is_verified(case, now=now):
        return None
    value = case.verification_method
    for method, strength in METHOD_STRENGTH.items():
        if value == method or value.startswith(method + "_"):
            return strength
    return ""


KNOWLEDGE_STEPS = ("reveal",)  # steps besides the low-risk action kinds a tenant may allow on knowledge alone
_KNOWLEDGE_STEP_LABELS = {"reveal": "Reveal a contact on file, with a reason"}


def knowledge_step_choices() -> list[tuple[str, str]]:
    """What a tenant may let knowledge questions alone unlock, as (key, label): the low-risk action
    kinds (desk.actions, in registry order), then KNOWLEDGE_STEPS. Never a high-risk kind."""
    kinds = [(key, kind.label) for key, kind in ACTIONS.items() if not kind.high_risk]
    return kinds + [(step, _KNOWLEDGE_STEP_LABELS[step]) for step in KNOWLEDGE_STEPS]


def knowledge_allows(case: Case, step: str) -> bool:
    """Whether the tenant's policy lets a caller verified by knowledge questions alone (weak) have
    `step` (a low-risk action kind, or "reveal"). A high-risk kind never, whatever is stored."""
    kind = ACTIONS.get(step)
    if kind is not None and kind.high_risk:
        return False
    return step in (action_settings_for(tenant_id=case.tenant_id).knowledge_allows or [])


def action_settings_for(*, tenant_id: int) -> ActionSettings:
    """The tenant's account-action settings (webhook, cooling-off window); defaults, unsaved, when
    it has none."""
    return ActionSettings.objects.filter(tenant_id=tenant_id).first() or ActionSettings(tenant_id=tenant_id)


_VERIFICATIONS = ModelRead(Verification, related={"requested_by": None})


def case_verifications(*, case: Case, limit: int = 5) -> list[Verification]:
    """The case's latest verifications, newest first, with who asked (the case page)."""
    return _VERIFICATIONS.rows("t.case_id = %s", [case.pk, limit], "ORDER BY t.id DESC LIMIT %s")


_ACTIONS = ModelRead(AccountAction, related={"requested_by": None, "approved_by": None})
_ACTION_TABLE = f'"{AccountAction._meta.db_table}"'
CASE_ACTIONS_SHOWN = 10  # the newest account actions the case page lists, whatever their state
CASE_PENDING_SHOWN = 50  # ... and the ones not gone out yet, up to this many more


def case_actions(*, case: Case, limit: int = CASE_ACTIONS_SHOWN, pending: int = CASE_PENDING_SHOWN) -> list:
    """The case's account actions for its page, with who asked and approved: every one that has not
    gone out yet (ACTION_PENDING_STATES: a supervisor may still approve or send it, resolving cancels
    it) however old, up to `pending`, first, newest first; then the rest of the `limit` newest. One
    query, by the case's index: each part is picked by id in its own subquery (an OR of the two made
    PostgreSQL scan every action of every case)."""
    states = list(ACTION_PENDING_STATES)
    marks = ", ".join(["%s"] * len(states))
    actions = _ACTIONS.rows(
        f"t.id IN (SELECT id FROM (SELECT id FROM {_ACTION_TABLE} WHERE case_id = %s AND state IN ({marks})"  # noqa: S608
        f" ORDER BY id DESC LIMIT %s) AS pending UNION ALL SELECT id FROM (SELECT id FROM {_ACTION_TABLE}"
        " WHERE case_id = %s ORDER BY id DESC LIMIT %s) AS newest)",
        [case.pk, *states, pending, case.pk, limit],
    )
    return sorted(actions, key=lambda a: (a.state in ACTION_PENDING_STATES, a.pk), reverse=True)


class PendingActions(NamedTuple):
    """What resolving the case would cancel (desk.action_services.actions_cancel_for_resolved_case)."""

    total: int
    groups: list[dict]  # {"action", "params", "state", "count"}, most numerous first


def case_actions_pending(*, case: Case) -> PendingActions:
    """Every account action of the case that has not gone out, counted by kind, parameters and state:
    complete whatever their number, in as many rows as there are distinct (kind, parameters, state),
    not actions. One query."""
    groups = list(
        AccountAction.objects.filter(case=case, state__in=ACTION_PENDING_STATES)
        .values("action", "params", "state")
        .annotate(count=Count("id"))
        .order_by("-count", "action", "state")
    )
    return PendingActions(sum(g["count"] for g in groups), groups)


def action_attempts(*, action_id: int) -> int:
    """How many times an account action was posted to the tenant so far (the send task's bound)."""
    return AccountAction.objects.filter(pk=action_id).values_list("attempts", flat=True).first() or 0


def case_action_get(*, case: Case, action_id) -> AccountAction:
    """One account action of a case (already fetched through the access functions) by its public
    id (uuid): Http404 when it is not this case's or is malformed."""

    try:
        return AccountAction.objects.select_related("case", "case__tenant").get(
            case=case, uuid=uuid.UUID(str(action_id))
        )
    except (AccountAction.DoesNotExist, ValueError):
        raise Http404("No such action.") from None


def case_open_annotation(*, user: User) -> dict:
    """For alert_get_for(annotations=...): the customer's open case that `user` may see, read with
    the alert itself (case_open_for_alert then asks nothing more). Written in SQL
    (queue_reads.customer_open_case_sql): through the ORM, the case scope's subquery cost the alert
    page more to build than to run."""
    sight = case_sight_for(user=user, queues=queue_scope_for(user=user).queues)  # read once a request
    text, params = customer_open_case_sql(sight, customer_column=f'"{Alert._meta.db_table}"."customer_id"')
    return {"open_case_found": RawSQL(text, params, output_field=CharField())}  # noqa: S611 (values are parameters)


def case_open_for_alert(*, user: User, alert: Alert) -> Case | None:
    """The open case of the alert's customer when `user` may see it (the alert page's link to it):
    from the alert's case_open_annotation when it was read with one, else one query."""
    if alert.customer_id is None:
        return None
    if "open_case_found" in alert.__dict__:
        found = alert.open_case_found
        if found is None:
            return None
        case_id, _, status = found.partition(":")
        return Case(pk=int(case_id), status=status)
    return (
        Case.objects.filter(case_scope_q(user=user, queues=queue_scope_for(user=user).queues))
        .filter(customer_id=alert.customer_id, status__in=OPEN_CASE_STATUSES)
        .only("id", "status")
        .first()
    )


# Reads for one case's page. Each takes a case already fetched through an access function.

_ALERTS = ModelRead(Alert)
CASE_ALERTS_SHOWN = 20  # the most severe first; the page says how many more


@dataclass(frozen=True)
class CaseAlertSummary:
    """What a case page needs to know of all its alerts, whatever their number: how many, their
    types (the playbooks shown) and when the first was seen (where the timeline's events start)."""

    total: int
    types: frozenset[str]
    first_seen_at: datetime | None


def case_alert_summary(*, case: Case) -> CaseAlertSummary:
    """The case's alerts counted by type: one query (a row per type, at most eight)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT a.type, COUNT(*), MIN(a.first_seen_at) FROM "{Alert._meta.db_table}" a'  # noqa: S608
            f' JOIN "{CaseAlert._meta.db_table}" ca ON ca.alert_id = a.id WHERE ca.case_id = %s GROUP BY a.type',
            [case.pk],
        )
        rows = cursor.fetchall()
    firsts = field_column(Alert._meta.get_field("first_seen_at"), [row[2] for row in rows])
    return CaseAlertSummary(
        total=sum(row[1] for row in rows),
        types=frozenset(row[0] for row in rows),
        first_seen_at=min(firsts, default=None),
    )


def case_alerts_for(
    *, case: Case, limit: int = CASE_ALERTS_SHOWN, summary: CaseAlertSummary | None = None
) -> tuple[list[Alert], int]:
    """The case's alerts, most severe and oldest first, at most `limit`, and how many it has (from
    `summary` when given: then one query, whatever the number of alerts)."""
    alerts = _ALERTS.rows(
        f't.id IN (SELECT ca.alert_id FROM "{CaseAlert._meta.db_table}" ca WHERE ca.case_id = %s)',  # noqa: S608
        [case.pk, limit + 1],
        "ORDER BY t.severity DESC, t.first_seen_at, t.id LIMIT %s",
    )
    for alert in alerts:
        alert.tenant = case.tenant  # the case's own
    total = len(alerts) if summary is None else summary.total
    if len(alerts) > limit:
        alerts = alerts[:limit]
        if summary is None:
            total = Alert.objects.filter(cases=case).count()
    return alerts, total


def playbook_checklist(*, tenant_id: int, alert_type: str) -> Checklist | None:
    """The checklist of one alert type as the tenant's agents see it (its own version, else the
    default), or None for a type without a playbook."""
    playbook = PLAYBOOKS.get(alert_type)
    if playbook is None:
        return None
    override = PlaybookOverride.objects.filter(tenant_id=tenant_id, alert_type=alert_type).first()
    return playbook.checklist(override)


def case_checklists(*, case: Case, summary: CaseAlertSummary | None = None) -> list[Checklist]:
    """The checklist of each alert type among the case's alerts, in the registry's order. Two queries
    (one when `summary` gives the types)."""
    if summary is not None:
        types = set(summary.types)
    else:
        types = set(Alert.objects.filter(cases=case).order_by().values_list("type", flat=True).distinct())
    marks = ", ".join(["%s"] * len(types))
    where = f"t.tenant_id = %s AND t.alert_type IN ({marks})"
    overrides = {o.alert_type: o for o in (_OVERRIDES.rows(where, [case.tenant_id, *types]) if types else [])}
    return [playbook.checklist(overrides.get(t)) for t, playbook in PLAYBOOKS.items() if t in types]


_CHECKS = ModelRead(PlaybookCheck, related={"checked_by": None})
_REVEALS = ModelRead(CaseReveal)
_OVERRIDES = ModelRead(PlaybookOverride)


def case_playbook_checks(*, case: Case) -> dict[tuple[str, str], PlaybookCheck]:
    """{(alert type, step key): check} of the steps ticked on the case. One query."""
    return {(c.alert_type, c.step_key): c for c in _CHECKS.rows("t.case_id = %s", [case.pk])}


def case_reveals_active(*, case: Case, user: User, now: datetime | None = None) -> dict[str, CaseReveal]:
    """{field: reveal} of `user`'s reveals on the case that have not expired yet (the latest per field)."""
    at = connection.ops.adapt_datetimefield_value(now or timezone.now())
    where = "t.case_id = %s AND t.actor_id = %s AND t.expires_at > %s"
    reveals = _REVEALS.rows(where, [case.pk, user.pk, at], "ORDER BY t.id")
    return {reveal.field: reveal for reveal in reveals}


def customer_fields_clear(*, customer_id: int, fields) -> dict[str, str]:
    """The clear values of some of a customer's encrypted fields. For callers that have applied the
    reveal rule (desk.services.case_reveal, and a page showing its own user's unexpired reveals)."""
    fields = [f for f in fields if f in ENCRYPTED_CUSTOMER_FIELDS]
    if not fields:
        return {}
    customer = Customer.objects.only("pk", *fields).get(pk=customer_id)
    return {f: getattr(customer, f) or "" for f in fields}


def case_shared_with(*, case: Case) -> list[User]:
    """The staff a case is shared with (its guardian object grants). One query."""
    return sorted(
        get_users_with_perms(case, only_with_perms_in=["work_case"], with_group_users=False), key=lambda u: u.username
    )


CONCERN_VIEW_PERM = "desk.view_securityconcern"  # BPO admins: read every tenant's concerns


def concern_tenant_ids_for(*, user: User) -> set[int]:
    """The tenants whose security concerns `user` reads: where they review them (a role carrying
    desk.supervise_case), and every tenant for a BPO admin whose group carries desk.view_securityconcern."""
    return {
        *tenant_ids_with_perm(user=user, perm=CASE_SUPERVISE_PERM),
        *tenant_ids_with_perm(user=user, perm=CONCERN_VIEW_PERM),
    }


def concern_can_read(*, user: User) -> bool:
    """Whether `user` has a security-concern review screen at all (even before a tenant exists)."""
    return bpo_admin_has_perm(user=user, perm=CONCERN_VIEW_PERM) or bool(
        tenant_ids_with_perm(user=user, perm=CASE_SUPERVISE_PERM)
    )


def concern_list_for(*, user: User, status: str | None = ConcernStatus.OPEN) -> QuerySet[SecurityConcern]:
    """The security concerns `user` reads (concern_tenant_ids_for), newest first."""
    tenant_ids = concern_tenant_ids_for(user=user)
    concerns = SecurityConcern.objects.filter(tenant_id__in=tenant_ids)
    if status:
        concerns = concerns.filter(status=status)
    return concerns.select_related("tenant", "case", "raised_by", "reviewed_by").order_by("-id")


def concern_get_for(*, user: User, concern_id) -> SecurityConcern:
    """One concern `user` reviews. Missing and forbidden both raise Http404."""
    try:
        return concern_list_for(user=user, status=None).get(pk=int(concern_id))
    except (SecurityConcern.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("No such concern.") from None


# --- the case timeline -------------------------------------------------------------------------------
#
# Everything that happened around a case, newest first, in keyset pages: the customer's account
# events, the case's alerts, its changes (from the audit trail: opened, alerts added, the customer's
# answer, status, claims, shares, verification attempts, account actions), notes, reveals, playbook
# checks, concerns, and the messages sent to the customer (its alerts' notifications and the case's
# verification codes). Each source is read
# with one query of at most a page after the position, and the pages are merged: the cost of a
# page is the same whatever the length of the case's history.

# Order at equal times; a kind's rank is in the "Older" links' cursors, so new kinds go at the end.
TIMELINE_KINDS = ("event", "alert", "change", "note", "reveal", "check", "concern", "notification")
TIMELINE_PAGE = 25
# The customer's account events from this long before the case's first alert are part of its timeline.
TIMELINE_EVENTS_BEFORE = timedelta(days=1)


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # one of TIMELINE_KINDS
    pk: int
    obj: object  # the event, alert, audit record, note, reveal, check or concern

    @property
    def key(self) -> tuple:
        return (self.at, TIMELINE_KINDS.index(self.kind), self.pk)


@dataclass(frozen=True)
class TimelinePosition:
    """Where a timeline page ends (its last item), encoded as url-safe base64 of a JSON list."""

    at: datetime
    rank: int
    pk: int

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat(), self.rank, self.pk], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> "TimelinePosition":
        try:
            if len(value) > 200:
                raise ValueError
            at, rank, pk = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
            moment = datetime.fromisoformat(at)
            ok = (
                moment.tzinfo is not None
                and type(rank) is int
                and 0 <= rank < len(TIMELINE_KINDS)
                and type(pk) is int
                and 0 < pk < 2**63
            )
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            ok = False
        if not ok:
            raise InvalidPositionError("Invalid cursor")
        return cls(moment, rank, pk)

    def before_q(self, kind: str, field: str) -> Q:
        """The rows of source `kind` (time in `field`) that come after this position, newest first."""
        rank = TIMELINE_KINDS.index(kind)
        if rank < self.rank:
            return Q(**{f"{field}__lte": self.at})
        if rank == self.rank:
            return Q(**{f"{field}__lt": self.at}) | Q(**{field: self.at, "pk__lt": self.pk})
        return Q(**{f"{field}__lt": self.at})


def _timeline_since(case: Case, summary: CaseAlertSummary | None) -> datetime:
    """Where the case's account events start: a day before its first alert (or its opening)."""
    if summary is None:
        summary = CaseAlertSummary(
            0, frozenset(), Alert.objects.filter(cases=case).aggregate(at=Min("first_seen_at"))["at"]
        )
    first_alert = summary.first_seen_at or case.opened_at
    return min(first_alert, case.opened_at) - TIMELINE_EVENTS_BEFORE


# The time field of each source, by kind.
_TIMELINE_FIELDS = {
    "event": "occurred_at", "alert": "alert_seen_at", "change": "occurred_at", "note": "created_at",
    "reveal": "created_at", "check": "checked_at", "concern": "created_at", "notification": "created_at",
}  # fmt: skip


# What a timeline line shows of each source (_timeline_row in case_views), read by id once the keys
# statement (_timeline_keys_sql, which holds each source's filter) has picked the page. Of the staff,
# the username is all a line shows. An alert is read through its CaseAlert row (its time on the case).
_USERNAME = ["id", "username"]
_TIMELINE_READS = {
    "event": ModelRead(AccountEvent),
    "alert": ModelRead(CaseAlert, fields=["alert_seen_at", "alert"], related={"alert": [
        "id", "type", "severity", "status", "reason", "first_seen_at", "rule"]}),
    "change": ModelRead(AuditEvent, fields=[
        "occurred_at", "action", "actor_label", "changes", "reason", "metadata"]),
    "note": ModelRead(CaseNote, fields=["case", "body", "created_at", "author"], related={"author": _USERNAME}),
    "reveal": ModelRead(CaseReveal, fields=[
        "case", "field", "reason_code", "reason_text", "created_at", "expires_at", "actor"],
        related={"actor": _USERNAME}),
    "check": ModelRead(PlaybookCheck, fields=[
        "case", "alert_type", "step_key", "step_text", "checked_at", "checked_by"], related={"checked_by": _USERNAME}),
    "concern": ModelRead(SecurityConcern, fields=["case", "kind", "note", "status", "created_at", "raised_by"],
                         related={"raised_by": _USERNAME}),
    "notification": ModelRead(Notification, fields=[
        "alert", "channel", "purpose", "state", "recipient_masked", "created_at", "sent_at", "error"]),
}  # fmt: skip


def _column(model, field: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(field).column)


@functools.cache
def _timeline_keys_sql(position_rank: int | None) -> str:
    """The statement that picks a timeline page: for each source, the keys (rank, time, id) of at
    most a page of rows after the position (each source's filter, by its
    indexes), merged and cut to the page. Its shape depends only on the position's rank: built
    once per rank, so a request pays no SQL compilation for it. Parameters: _timeline_keys_params."""
    table = {
        "event": AccountEvent, "alert": CaseAlert, "change": AuditEvent, "note": CaseNote, "reveal": CaseReveal,
        "check": PlaybookCheck, "concern": SecurityConcern, "notification": Notification,
    }  # fmt: skip
    q, case_id = connection.ops.quote_name, _column(CaseNote, "case")
    where = {
        "event": f"{_column(AccountEvent, 'customer')} = %s AND {_column(AccountEvent, 'occurred_at')} >= %s",
        "alert": f"{_column(CaseAlert, 'case')} = %s",
        "change": f"{_column(AuditEvent, 'target_type')} = %s AND {_column(AuditEvent, 'target_id')} = %s "
        f"AND {_column(AuditEvent, 'action')} IN (%s, %s)",
        "note": f"{case_id} = %s",
        "reveal": f"{_column(CaseReveal, 'case')} = %s",
        "check": f"{_column(PlaybookCheck, 'case')} = %s",
        "concern": f"{_column(SecurityConcern, 'case')} = %s",
        "notification": f"{_column(Notification, 'customer')} = %s AND ({_column(Notification, 'alert')} IN "  # noqa: S608
        f"(SELECT {_column(CaseAlert, 'alert')} FROM {q(CaseAlert._meta.db_table)} "
        f"WHERE {_column(CaseAlert, 'case')} = %s) OR {q(Notification._meta.pk.column)} IN "
        f"(SELECT {_column(Verification, 'notification')} FROM {q(Verification._meta.db_table)} "
        f"WHERE {_column(Verification, 'case')} = %s AND {_column(Verification, 'notification')} IS NOT NULL))",
    }  # names from the models' _meta, quoted; every value is a parameter
    branches = []
    for rank, kind in enumerate(TIMELINE_KINDS):
        model = table[kind]
        at, pk = _column(model, _TIMELINE_FIELDS[kind]), q(model._meta.pk.column)
        condition = where[kind]
        if position_rank is not None:  # as TimelinePosition.before_q
            if rank < position_rank:
                condition += f" AND {at} <= %s"
            elif rank == position_rank:
                condition += f" AND ({at} < %s OR ({at} = %s AND {pk} < %s))"
            else:
                condition += f" AND {at} < %s"
        branches.append(
            f"SELECT * FROM (SELECT {rank} AS r, {at} AS at, {pk} AS id FROM {q(model._meta.db_table)} "  # noqa: S608
            f"WHERE {condition} ORDER BY {at} DESC, {pk} DESC LIMIT %s) AS b{rank}"
        )
    union = " UNION ALL ".join(branches)
    return f"SELECT r, id FROM ({union}) AS u ORDER BY at DESC, r DESC, id DESC LIMIT %s"  # noqa: S608


def _timeline_keys_params(case: Case, since: datetime, before: "TimelinePosition | None", limit: int) -> list:
    adapt = connection.ops.adapt_datetimefield_value
    where = {
        "event": [case.customer_id, adapt(since)],
        "change": ["desk.case", str(case.pk), Action.CREATE, Action.UPDATE],
        "notification": [case.customer_id, case.pk, case.pk],
    }
    params: list = []
    for rank, kind in enumerate(TIMELINE_KINDS):
        params += where.get(kind, [case.pk])
        if before is not None:
            at = adapt(before.at)
            params += [at] if rank != before.rank else [at, at, before.pk]
        params.append(limit)
    return [*params, limit]


def case_timeline_page(
    *,
    case: Case,
    before: TimelinePosition | None = None,
    size: int = TIMELINE_PAGE,
    summary: CaseAlertSummary | None = None,
) -> tuple[list[TimelineItem], TimelinePosition | None]:
    """One page of the case's timeline, newest first, after `before`: the items and the position of
    the next (older) page, or None on the last. One statement picks the page's rows among every
    source (_timeline_keys_sql), then one reads the rows of each kind on the page: at most nine
    (and one for the page's start without the page's `summary` of the case's alerts), whatever the
    history's length, and only the rows shown are built."""
    since = _timeline_since(case, summary)
    with connection.cursor() as cursor:
        cursor.execute(
            _timeline_keys_sql(None if before is None else before.rank),
            _timeline_keys_params(case, since, before, size + 1),
        )
        keys = cursor.fetchall()
    wanted: dict[str, list[int]] = {}
    for rank, pk in keys[:size]:  # one more key says whether an older page exists; its row is not read
        wanted.setdefault(TIMELINE_KINDS[rank], []).append(pk)
    items: list[TimelineItem] = []
    for kind, pks in wanted.items():
        field = _TIMELINE_FIELDS[kind]
        for obj in _TIMELINE_READS[kind].by_ids(pks):
            shown = obj.alert if kind == "alert" else obj  # a CaseAlert row: the page shows its alert
            items.append(TimelineItem(at=getattr(obj, field), kind=kind, pk=obj.pk, obj=shown))
    items.sort(key=lambda item: item.key, reverse=True)
    if len(keys) > size and items:
        last = items[-1]
        return items, TimelinePosition(last.at, TIMELINE_KINDS.index(last.kind), last.pk)
    return items, None


def cases_shared_with(*, user: User) -> QuerySet[Case]:
    """The cases shared with `user` one by one (guardian desk.work_case), in active tenants they are
    still members of: what case_scope_q adds to their queues. The live connection hears these."""
    return _granted(user, CASE_WORK_PERM, Case)
