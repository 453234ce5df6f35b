from django.shortcuts import render

from alerts.models import ACTIVE_STATUSES
from alerts.selectors import alert_list_for


def home(request):
    """The desk's home: where the agent's queues will live. Until they do, it says only what is
    true: how many active alerts the current tenant has (a number: no alert's data is shown)."""
    active_alerts = None
    if request.tenant:
        active_alerts = (
            alert_list_for(user=request.user).filter(tenant=request.tenant, status__in=ACTIVE_STATUSES).count()
        )
    return render(request, "desk/desk_home.html", {"active_alerts": active_alerts})
