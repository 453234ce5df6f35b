"""Reads of alerts, and their access functions: staff see the alerts of the tenants where their
role carries alerts.view_alert, narrowed by the scopes other apps register: the desk narrows an
agent to the queues granted to them (alerts never imports the desk; it registers at start-up)."""

from collections.abc import Callable
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import DataError, connection
from django.db.models import Q, QuerySet, prefetch_related_objects
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.selectors import tenant_ids_with_perm, tenant_of, user_has_tenant_perm
from alerts.models import AccountEvent, Alert, AlertEvidence, Customer
from config.sql import ModelRead

ALERT_VIEW_PERM = "alerts.view_alert"
ALERT_CHANGE_PERM = "alerts.change_alert"
ALERT_REASSIGN_PERM = "alerts.reassign_alert"
ENCRYPTED_CUSTOMER_FIELDS = ("email", "phone", "display_name")


def alert_tenant_ids_for(*, user: User, perm: str = ALERT_VIEW_PERM) -> list[int]:
    """Ids of the tenants whose alerts `user` may see (or work on): the one access function that the
    HTTP reads and the desk's live connection share, so that narrowing one narrows the other."""
    return tenant_ids_with_perm(user=user, perm=perm)


# Narrowings of the tenant scope: each takes (user, tenant_ids) and answers a Q over Alert that the
# user's alerts must also match, and says the same of one alert already read (`allows`: (user,
# tenant_ids, alert) -> bool), so that reading one alert by id needs no filter compiled into its
# query. Registered by apps at start-up (desk.apps: queue grants); a test holds the two forms equal.
AlertScope = Callable[..., Q]
AlertAllows = Callable[..., bool]
_ALERT_SCOPES: list[tuple[AlertScope, AlertAllows]] = []


def alert_scope_register(scope: AlertScope, *, allows: AlertAllows) -> None:
    """Add a narrowing to every alert access function (once per process, from AppConfig.ready)."""
    if (scope, allows) not in _ALERT_SCOPES:
        _ALERT_SCOPES.append((scope, allows))


def alert_scope_q(*, user: User, perm: str = ALERT_VIEW_PERM) -> Q:
    """The alerts `user` may see (or work on) as a filter: the tenants where their role carries
    `perm`, narrowed by every registered scope. Deny by default: no tenant, no alert.

    Worked out once per user object and permission (a page asks several times): like Django's own
    permission cache, it lives as long as the request's user; a socket re-reads its user on every
    re-check, so a revoked grant narrows it then."""
    cache = getattr(user, "_alert_scope_cache", None)
    if cache is None:
        cache = user._alert_scope_cache = {}
    if perm not in cache:
        tenant_ids = alert_tenant_ids_for(user=user, perm=perm)
        q = Q(tenant_id__in=tenant_ids) if tenant_ids else Q(pk__in=[])
        for scope, _ in _ALERT_SCOPES if tenant_ids else ():
            q &= scope(user=user, tenant_ids=tenant_ids)
        cache[perm] = q
    return cache[perm]


def alert_list_for(*, user: User, perm: str = ALERT_VIEW_PERM) -> QuerySet[Alert]:
    """Alerts `user` may see (or, with perm=ALERT_CHANGE_PERM, work on), newest first: the one
    access function of the staff API, the desk's pages and fragments. The customer's encrypted
    contacts are not loaded (so not decrypted): lists show the masked forms."""
    alerts = (
        Alert.objects.select_related("tenant", "customer", "assignee")
        .defer(*(f"customer__{name}" for name in ENCRYPTED_CUSTOMER_FIELDS))
        .order_by("-id")
    )
    return alerts.filter(alert_scope_q(user=user, perm=perm))


def alert_get_for(
    *, user: User, alert_id, perm: str = ALERT_VIEW_PERM, with_evidence: bool = True, annotations: dict | None = None
) -> Alert:
    """One alert `user` may see (or work on). Missing and forbidden both raise Http404.
    `with_evidence=False` leaves the evidence unfetched, for a caller that pages it
    (`alert_evidence_for`): a folding alert's evidence grows without bound. `annotations`: more
    expressions read in the same query (a page's subquery), as QuerySet.annotate takes them.

    The rule is alert_scope_q's, applied to the one alert read by id (its tenant, then every
    registered narrowing's `allows`) rather than compiled into its query: on the alert page, the
    narrowing's filter cost more to build than the rest of the read."""
    try:
        pk = int(alert_id)
    except (ValueError, TypeError):
        raise Http404("No such alert.") from None
    if not alert_tenant_ids_for(user=user, perm=perm):  # deny by default, without reading the alert
        raise Http404("No such alert.")
    try:
        alert = _alert_read(pk, annotations or {})
    except (OverflowError, DataError):  # an id beyond the column's range (PostgreSQL refuses to compare it)
        alert = None
    if alert is None:
        raise Http404("No such alert.")
    if not alert_allows(user=user, alert=alert, perm=perm):
        raise Http404("No such alert.")
    alert.tenant = tenant_of(user=user, tenant_id=alert.tenant_id)  # one of theirs: from the access read
    if with_evidence:
        prefetch_related_objects([alert], "evidence")
    return alert


# The alert, its customer (but the encrypted contacts: pages show the masked forms) and its assignee,
# as select_related(...).defer(...) reads them. The alert's table keeps its own name as its alias:
# annotations refer to it, as in the ORM's.
_ALERT_READ = ModelRead(
    Alert,
    related={
        "customer": [f.name for f in Customer._meta.concrete_fields if f.name not in ENCRYPTED_CUSTOMER_FIELDS],
        "assignee": None,
    },
    alias=f'"{Alert._meta.db_table}"',
)


def _alert_read(pk: int, annotations: dict) -> Alert | None:
    """The alert `pk` with its customer and assignee, and `annotations` (name -> RawSQL) as
    attributes, in one statement written in SQL (through the ORM, select_related with defer cost
    the alert page more to compile than to run); None when there is none. The tenant is not read:
    the caller sets it from the user's access read once the alert is known to be theirs."""
    if any(not isinstance(value, RawSQL) for value in annotations.values()):  # pragma: no cover (a caller's bug)
        raise TypeError("alert_get_for takes RawSQL annotations")
    extra = [(name, value.sql, value.params) for name, value in annotations.items()]
    found = _ALERT_READ.rows(f"{_ALERT_READ.alias}.id = %s", [pk], extra=extra)
    return found[0] if found else None


def alert_allows(*, user: User, alert: Alert, perm: str = ALERT_VIEW_PERM) -> bool:
    """Whether `user` may see (or work on) `alert`, read by id: alert_scope_q's rule for one alert."""
    tenant_ids = alert_tenant_ids_for(user=user, perm=perm)
    if alert.tenant_id not in tenant_ids:
        return False
    return all(allows(user=user, tenant_ids=tenant_ids, alert=alert) for _, allows in _ALERT_SCOPES)


def alert_get_to_act(*, user: User, alert_id, perm: str) -> Alert:
    """One alert `user` may see, to act on with `perm`. An alert they cannot see raises Http404
    (missing and forbidden look the same); one they see but whose tenant role does not carry `perm`
    raises PermissionDenied (403), as the staff API contract says."""
    alert = alert_get_for(user=user, alert_id=alert_id)
    if alert.tenant_id not in alert_tenant_ids_for(user=user, perm=perm):
        raise PermissionDenied("Your role may not do this to alerts of this client.")
    return alert


def alert_held_against(*, user: User, alert: Alert) -> User | None:
    """The staff member whose hold on `alert` keeps `user` from taking a lifecycle step on it
    (acknowledge, resolve, dismiss): its holder, when that is someone else and `user`'s role in the
    alert's tenant does not carry alerts.reassign_alert (supervisors and admins may step in on
    anyone's alert); else None. The one rule that the lifecycle services enforce and the alert page
    follows to offer the steps. Takes an alert already fetched through an access function (or locked
    by a service); one query for the role, and only when someone else holds it."""
    if alert.assignee_id is None or alert.assignee_id == user.pk:
        return None
    if user_has_tenant_perm(user=user, tenant=alert.tenant, perm=ALERT_REASSIGN_PERM):
        return None
    return alert.assignee


def event_ids_unprocessed(*, older_than: timedelta, after_id: int = 0, limit: int | None = None) -> list[int]:
    """Ids above `after_id` of events received more than `older_than` ago that detection has not
    processed yet (their task was lost, or gave up on a lost database or broker), in arrival order
    (ids follow arrival). Dead letters are processed (set aside), so they are not among them."""
    cutoff = timezone.now() - older_than
    events = AccountEvent.objects.filter(processed_at__isnull=True, received_at__lt=cutoff, id__gt=after_id)
    ids = events.order_by("id").values_list("id", flat=True)
    return list(ids[:limit] if limit is not None else ids)


# Reads for one alert's page. Each takes an alert the caller already fetched through an access
# function (`alert_get_for`): they add no access check of their own, and must not be given anything else.


# The alert page's evidence, written once as SQL (ModelRead): compiled by the ORM on every page
# view it cost more than the database's answer.
_EVIDENCE = ModelRead(AccountEvent)
_EVIDENCE_JOIN = (f'JOIN "{AlertEvidence._meta.db_table}" ae ON ae.event_id = t.id', [])


def alert_evidence_for(*, alert: Alert, limit: int = 50) -> tuple[list[AccountEvent], int]:
    """The newest `limit` evidence events of `alert`, in the order they happened, and how many it has
    in all. At most two queries (the count only when there are more than `limit`), whatever the size."""
    # the links come from the (alert, event) unique index; the database sorts the alert's events
    newest = f"ORDER BY t.occurred_at DESC, t.id DESC LIMIT {int(limit) + 1}"
    events = _EVIDENCE.rows("ae.alert_id = %s", [alert.pk], newest, joins=_EVIDENCE_JOIN)
    total = len(events)
    if total > limit:
        events = events[:limit]
        total = AlertEvidence.objects.filter(alert_id=alert.pk).count()
    events.reverse()
    return events, total


_LINKS = Alert.related.through._meta
_LINKS_SQL = (
    f'SELECT "{_LINKS.get_field("from_alert").column}", "{_LINKS.get_field("to_alert").column}"'  # noqa: S608 (from _meta)
    f' FROM "{_LINKS.db_table}" WHERE "{_LINKS.get_field("from_alert").column}" = %s'
    f' OR "{_LINKS.get_field("to_alert").column}" = %s'
)


def alert_related_for(*, user: User, alert: Alert) -> list[Alert]:
    """The alerts linked to `alert` in either direction (the escalation it is part of, or the alerts
    an escalation links), those `user` may see only, oldest first. Each carries `escalates` (True
    when it is an escalation that links `alert`). The links first, from their two indexes, then
    the alerts by id: a filter of "id in this subquery or that one" over the whole alert table
    was read from top to bottom at a million alerts. Two queries at most; one when there is no link."""
    with connection.cursor() as cursor:  # in SQL: the ORM compiled it on every alert page, for a few ids
        cursor.execute(_LINKS_SQL, [alert.pk, alert.pk])
        pairs = cursor.fetchall()
    linked, escalations = set(), set()
    for source, target in pairs:
        if target == alert.pk:
            escalations.add(source)
        linked.add(target if source == alert.pk else source)
    linked.discard(alert.pk)
    if not linked:
        return []
    related = list(alert_list_for(user=user).filter(pk__in=linked).order_by("first_seen_at", "id"))
    for other in related:
        other.escalates = other.pk in escalations
    return related


def staff_get_by_username(*, username: str) -> User | None:
    """The active staff member with this username, or None (the caller's service decides whether
    they may be given the alert, and answers both cases alike)."""
    return User.objects.filter(username=username, is_active=True).first()
