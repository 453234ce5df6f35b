"""Reads of alerts, and their access functions: staff see the alerts of the tenants where their
role carries alerts.view_alert (every role today; the desk will narrow agents to their queues)."""

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from accounts.selectors import tenant_ids_with_perm
from alerts.models import Alert

ALERT_VIEW_PERM = "alerts.view_alert"
ALERT_CHANGE_PERM = "alerts.change_alert"


def alert_tenant_ids_for(*, user: User, perm: str = ALERT_VIEW_PERM) -> list[int]:
    """Ids of the tenants whose alerts `user` may see (or work on): the one access function that the
    HTTP reads and the desk's live connection share, so that narrowing one narrows the other."""
    return tenant_ids_with_perm(user=user, perm=perm)


def alert_list_for(*, user: User, perm: str = ALERT_VIEW_PERM) -> QuerySet[Alert]:
    """Alerts `user` may see (or, with perm=ALERT_CHANGE_PERM, work on), newest first."""
    alerts = Alert.objects.select_related("tenant", "customer").order_by("-id")
    return alerts.filter(tenant_id__in=alert_tenant_ids_for(user=user, perm=perm))


def alert_get_for(*, user: User, alert_id, perm: str = ALERT_VIEW_PERM) -> Alert:
    """One alert `user` may see (or work on). Missing and forbidden both raise Http404."""
    try:
        return alert_list_for(user=user, perm=perm).prefetch_related("evidence").get(pk=int(alert_id))
    except (Alert.DoesNotExist, ValueError, TypeError):
        raise Http404("No such alert.") from None
