"""Reads of the audit trail, and who may read which part of it.

BPO admins whose group carries audit.view_auditevent read every chain (events without a tenant
included); a tenant's supervisors and admins read that tenant's events; agents read none. Pages are
keyset-paginated on id, newest first.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, Max, Min, Q, QuerySet

from accounts.models import Tenant, User
from accounts.selectors import bpo_admin_has_perm, tenant_ids_with_perm
from audit.models import Action, AuditEvent
from config.sql import ModelRead, sql_constants

AUDIT_VIEW_PERM = "audit.view_auditevent"


@dataclass(frozen=True)
class AuditScope:
    """The events a user may read: those of `tenant_ids` and, with `tenantless`, those without a
    tenant (sign-ins, Django admin work). Nothing else: an empty scope reads nothing."""

    tenant_ids: tuple[int, ...] = ()
    tenantless: bool = False

    @property
    def empty(self) -> bool:
        return not self.tenant_ids and not self.tenantless


def audit_scope_for(*, user: User) -> AuditScope:
    """What `user` may read of the trail, deny by default. A BPO admin whose group carries
    audit.view_auditevent reads every tenant's events (a deactivated tenant's too: the trail outlives
    the client) and events without a tenant; others read the tenants where their role carries it."""
    if not user.is_authenticated:
        return AuditScope()
    if bpo_admin_has_perm(user=user, perm=AUDIT_VIEW_PERM):
        return AuditScope(tenant_ids=tuple(Tenant.objects.values_list("pk", flat=True)), tenantless=True)
    return AuditScope(tenant_ids=tuple(tenant_ids_with_perm(user=user, perm=AUDIT_VIEW_PERM)))


_UNSET = object()


def audit_can_read(*, user: User, scope=_UNSET) -> bool:
    scope = audit_scope_for(user=user) if scope is _UNSET else scope
    return not scope.empty


def audit_readable_tenants(*, user: User, scope=_UNSET) -> QuerySet[Tenant]:
    """`scope`: the result of audit_scope_for, when the caller has it already."""
    scope = audit_scope_for(user=user) if scope is _UNSET else scope
    return Tenant.objects.filter(pk__in=scope.tenant_ids)


@dataclass(frozen=True)
class AuditFilters:
    tenant_id: int | None = None
    actor_id: int | None = None
    action: str = ""
    target_type: str = ""
    target_id: str = ""
    date_from: datetime | None = None
    date_to: datetime | None = None

    def as_metadata(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items() if v}


def audit_event_queryset_for(*, user: User, filters: AuditFilters, scope=_UNSET) -> QuerySet[AuditEvent]:
    """Events `user` may read that match `filters`, newest first. Unreadable tenants match nothing."""
    scope = audit_scope_for(user=user) if scope is _UNSET else scope
    readable = Q(tenant_id__in=scope.tenant_ids)
    if scope.tenantless:
        readable |= Q(tenant_id__isnull=True)
    events = AuditEvent.objects.filter(readable)
    if filters.tenant_id is not None:
        events = events.filter(tenant_id=filters.tenant_id)
    if filters.actor_id is not None:
        events = events.filter(actor_id=filters.actor_id)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.target_type:
        events = events.filter(target_type=filters.target_type)
        if filters.target_id:
            events = events.filter(target_id=filters.target_id)
    if filters.date_from:
        events = events.filter(occurred_at__gte=filters.date_from)
        low = _first_id_at_or_after(filters.date_from)
        events = events.filter(id__gte=low) if low is not None else events.none()
    if filters.date_to:
        events = events.filter(occurred_at__lt=filters.date_to)
        high = _last_id_before(filters.date_to)
        events = events.filter(id__lte=high) if high is not None else events.none()
    return events.order_by("-id")


# A date range becomes an id range, so that a page is a short keyset scan instead of sorting every
# event of the range. Exact, because occurred_at is set at insert: an event never has a larger id
# than one recorded more than an hour after it. Each bound is looked up near its date first (a few
# BRIN block ranges), widening only when nothing was recorded there.
_WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=31), None)
# max(id) alone is planned as a backward primary-key walk filtering on the date (millions of rows);
# max(id + 0) lets the BRIN index on occurred_at narrow the window first.
_UNINDEXED_ID = F("id") + 0


def _last_id_before(moment: datetime) -> int | None:
    for window in _WINDOWS:
        rows = AuditEvent.objects.filter(occurred_at__lt=moment)
        if window is not None:
            rows = rows.filter(occurred_at__gte=moment - window)
        found = rows.aggregate(m=Max(_UNINDEXED_ID))["m"]
        if found is not None:
            return found
    return None


def _first_id_at_or_after(moment: datetime) -> int | None:
    for window in _WINDOWS:
        rows = AuditEvent.objects.filter(occurred_at__gte=moment)
        if window is not None:
            rows = rows.filter(occurred_at__lt=moment + window)
        found = rows.aggregate(m=Min(_UNINDEXED_ID))["m"]
        if found is not None:
            return found
    return None


def audit_event_page_for(
    *, user: User, filters: AuditFilters, before_id: int | None = None, size: int = 50, scope=_UNSET
) -> tuple[list[AuditEvent], int | None]:
    """One page of events and the cursor for the next (older) page, or None at the end."""
    events = audit_event_queryset_for(user=user, filters=filters, scope=scope).select_related("tenant")
    if before_id is not None:
        events = events.filter(id__lt=before_id)
    rows = list(events[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].pk if more and rows else None)


def audit_actor_get(*, username: str) -> User | None:
    return User.objects.filter(username=username).first()


# A screen's history beside what it shows, written once as SQL (ModelRead): the ORM compiled it on
# every alert and case page. The actions are in the text, not parameters: the index that serves it
# is partial on them, and only so can PostgreSQL keep one plan for the prepared statement.
_CHANGES = ModelRead(AuditEvent, fields=["id", "occurred_at", "action", "actor_label", "changes", "reason", "origin"])
_CHANGE_ACTIONS = sql_constants([Action.CREATE, Action.UPDATE])


def audit_changes_of(*, obj, limit: int = 20) -> list[AuditEvent]:
    """The changes recorded on one object (its creation and updates; never views or lists), newest
    first: the working history that a screen showing `obj` shows beside it. Adds no access check:
    the caller shows `obj` only after its own access function allowed it. One query, served by
    the (target_type, target_id, id) index."""
    target_type = f"{obj._meta.app_label}.{obj._meta.model_name}"
    return _CHANGES.rows(
        f"t.target_type = %s AND t.target_id = %s AND t.action IN {_CHANGE_ACTIONS}",
        [target_type, str(obj.pk)],
        f"ORDER BY t.id DESC LIMIT {int(limit)}",
    )
