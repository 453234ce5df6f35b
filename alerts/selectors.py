"""Reads of alerts, and their access functions: staff see the alerts of the tenants where their
role carries alerts.view_alert (every role today; the desk will narrow agents to their queues)."""

from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.selectors import tenant_ids_with_perm
from alerts.models import AccountEvent, Alert

ALERT_VIEW_PERM = "alerts.view_alert"
ALERT_CHANGE_PERM = "alerts.change_alert"
ALERT_REASSIGN_PERM = "alerts.reassign_alert"
ENCRYPTED_CUSTOMER_FIELDS = ("email", "phone", "display_name")


def alert_tenant_ids_for(*, user: User, perm: str = ALERT_VIEW_PERM) -> list[int]:
    """Ids of the tenants whose alerts `user` may see (or work on): the one access function that the
    HTTP reads and the desk's live connection share, so that narrowing one narrows the other."""
    return tenant_ids_with_perm(user=user, perm=perm)


def alert_list_for(*, user: User, perm: str = ALERT_VIEW_PERM) -> QuerySet[Alert]:
    """Alerts `user` may see (or, with perm=ALERT_CHANGE_PERM, work on), newest first. The
    customer's encrypted contacts are not loaded (so not decrypted): lists show the masked forms."""
    alerts = (
        Alert.objects.select_related("tenant", "customer", "assignee")
        .defer(*(f"customer__{name}" for name in ENCRYPTED_CUSTOMER_FIELDS))
        .order_by("-id")
    )
    return alerts.filter(tenant_id__in=alert_tenant_ids_for(user=user, perm=perm))


def alert_get_for(*, user: User, alert_id, perm: str = ALERT_VIEW_PERM) -> Alert:
    """One alert `user` may see (or work on). Missing and forbidden both raise Http404."""
    try:
        return alert_list_for(user=user, perm=perm).prefetch_related("evidence").get(pk=int(alert_id))
    except (Alert.DoesNotExist, ValueError, TypeError):
        raise Http404("No such alert.") from None


def alert_get_to_act(*, user: User, alert_id, perm: str) -> Alert:
    """One alert `user` may see, to act on with `perm`. An alert they cannot see raises Http404
    (missing and forbidden look the same); one they see but whose tenant role does not carry `perm`
    raises PermissionDenied (403), as the staff API contract says."""
    alert = alert_get_for(user=user, alert_id=alert_id)
    if alert.tenant_id not in alert_tenant_ids_for(user=user, perm=perm):
        raise PermissionDenied("Your role may not do this to alerts of this client.")
    return alert


def event_ids_unprocessed(*, older_than: timedelta, after_id: int = 0, limit: int | None = None) -> list[int]:
    """Ids above `after_id` of events received more than `older_than` ago that detection has not
    processed yet (their task was lost, or gave up on a lost database or broker), in arrival order
    (ids follow arrival). Dead letters are processed (set aside), so they are not among them."""
    cutoff = timezone.now() - older_than
    events = AccountEvent.objects.filter(processed_at__isnull=True, received_at__lt=cutoff, id__gt=after_id)
    ids = events.order_by("id").values_list("id", flat=True)
    return list(ids[:limit] if limit is not None else ids)


def staff_get_by_username(*, username: str) -> User | None:
    """The active staff member with this username, or None (the caller's service decides whether
    they may be given the alert, and answers both cases alike)."""
    return User.objects.filter(username=username, is_active=True).first()
