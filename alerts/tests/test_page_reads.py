"""The alert page's reads written as SQL (alerts.selectors.alert_evidence_for, audit.selectors
audit_changes_of) give what the ORM statements they replaced give: the same rows, in the same
order, every loaded value equal."""

from datetime import timedelta

import pytest

from alerts.models import AccountEvent, AlertEvidence
from alerts.selectors import alert_evidence_for
from alerts.tests.factories import T0, AccountEventFactory, AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent
from audit.selectors import audit_changes_of
from audit.services import audit_record

pytestmark = pytest.mark.django_db


def _values(obj, names=None) -> dict:
    fields = type(obj)._meta.concrete_fields
    return {f.attname: getattr(obj, f.attname) for f in fields if names is None or f.attname in names}


@pytest.mark.parametrize("limit", [1, 3, 7, 50])
def test_the_evidence_is_the_orms(limit):
    customer = CustomerFactory()
    times = [T0, T0, T0 + timedelta(minutes=1), T0 - timedelta(minutes=5), T0 + timedelta(minutes=1), T0]
    events = [AccountEventFactory(customer=customer, occurred_at=t, context={"n": n}) for n, t in enumerate(times)]
    alert = AlertFactory(customer=customer, tenant=customer.tenant, evidence=events)
    others = [AccountEventFactory(customer=customer)]
    AlertFactory(customer=customer, tenant=customer.tenant, evidence=others)  # another alert's evidence
    expected = list(AccountEvent.objects.filter(alerts__pk=alert.pk).order_by("-occurred_at", "-id")[:limit])
    expected.reverse()
    got, total = alert_evidence_for(alert=alert, limit=limit)
    assert [_values(e) for e in got] == [_values(e) for e in expected]
    assert len(got) == min(limit, len(events))
    assert total == len(events) == AlertEvidence.objects.filter(alert=alert).count()
    empty = AlertFactory(customer=customer, tenant=customer.tenant, evidence=[])
    assert alert_evidence_for(alert=empty, limit=limit) == ([], 0)


def test_the_history_is_the_orms_changes_only_newest_first(agent, tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    alert = AlertFactory(customer=customer, tenant=tenant_a)
    other = AlertFactory(customer=customer, tenant=tenant_a)
    for n, action in enumerate([Action.CREATE, Action.VIEW, Action.UPDATE, Action.LIST, Action.UPDATE, Action.UPDATE]):
        audit_record(action=action, actor=agent, tenant=tenant_a, target=alert, changes={"n": n}, reason=f"r{n}")
        audit_record(action=Action.UPDATE, actor=agent, tenant=tenant_a, target=other, changes={"other": n})
    names = {"id", "occurred_at", "action", "actor_label", "changes", "reason", "origin"}
    for limit in (1, 2, 20):
        expected = list(
            AuditEvent.objects.filter(
                target_type="alerts.alert", target_id=str(alert.pk), action__in=[Action.CREATE, Action.UPDATE]
            )
            .only(*names)
            .order_by("-id")[:limit]
        )
        got = audit_changes_of(obj=alert, limit=limit)
        assert [_values(e, names) for e in got] == [_values(e, names) for e in expected]
        assert [e.get_deferred_fields() for e in got] == [e.get_deferred_fields() for e in expected]
    assert [e.changes["n"] for e in audit_changes_of(obj=alert)] == [5, 4, 2, 0]
