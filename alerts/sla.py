"""Service levels: per tenant and severity, minutes to an alert's first response (a claim or an
acknowledgement) and to its resolution, counted from when it was raised. A tenant without its own
SlaPolicy row for a severity gets the defaults below."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from alerts.models import ACTIVE_STATUSES, Alert, Severity, SlaPolicy

# (first response, resolution), in minutes.
DEFAULT_SLA: dict[int, tuple[int, int]] = {
    Severity.CRITICAL: (15, 240),
    Severity.HIGH: (60, 480),
    Severity.MEDIUM: (240, 1440),
    Severity.LOW: (1440, 4320),
}

Policies = dict[tuple[int, int], tuple[int, int]]  # (tenant id, severity) -> (first response, resolution)


def sla_policies_for(*, tenant_ids: Iterable[int]) -> Policies:
    """The tenants' own policies, in one query (the defaults fill the rest in `sla_minutes`)."""
    rows = SlaPolicy.objects.filter(tenant_id__in=set(tenant_ids)).values_list(
        "tenant_id", "severity", "first_response_minutes", "resolution_minutes"
    )
    return {(tenant_id, severity): (first, resolution) for tenant_id, severity, first, resolution in rows}


def sla_minutes(policies: Policies, *, tenant_id: int, severity: int) -> tuple[int, int]:
    return policies.get((tenant_id, severity)) or DEFAULT_SLA[severity]


def sla_due_times(
    policies: Policies, *, tenant_id: int, severity: int, raised_at: datetime
) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for an alert of this severity raised at `raised_at`."""
    first, resolution = sla_minutes(policies, tenant_id=tenant_id, severity=severity)
    return raised_at + timedelta(minutes=first), raised_at + timedelta(minutes=resolution)


def sla_due_now(alert: Alert, *, active: bool | None = None) -> datetime | None:
    """The due time that applies to `alert` now: first response until it happens, then resolution;
    none once the alert is final. The desk's cases keep the same clocks: `active` says whether
    such an item is still worked (for an alert, whether it is open or acknowledged)."""
    if not (alert.status in ACTIVE_STATUSES if active is None else active):
        return None
    return alert.first_response_due_at if alert.first_response_at is None else alert.resolution_due_at


def sla_apply(alert: Alert, policies: Policies, *, raised_at: datetime, active: bool | None = None) -> None:
    """Set the alert's due times for its (possibly raised) severity. An alert already timed keeps
    the earlier of each: a severity that rises makes the SLA tighter, never looser. `active`: as
    for sla_due_now (a case passes its own)."""
    first, resolution = sla_due_times(policies, tenant_id=alert.tenant_id, severity=alert.severity, raised_at=raised_at)
    if alert.first_response_due_at is not None:
        first = min(first, alert.first_response_due_at)
    if alert.resolution_due_at is not None:
        resolution = min(resolution, alert.resolution_due_at)
    alert.first_response_due_at, alert.resolution_due_at = first, resolution
    alert.sla_due_at = sla_due_now(alert, active=active)
