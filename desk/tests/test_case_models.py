"""The case tables hold their rules themselves: one open case per customer, an outcome when (and
only when) a case is resolved. Services go through these constraints under races too."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.tests.factories import CustomerFactory
from desk.models import Case, CaseOpenedVia, CaseOutcome, CaseStatus, Queue

pytestmark = pytest.mark.django_db


def _case(customer, **fields) -> Case:
    now = timezone.now()
    values = {
        "tenant": customer.tenant, "customer": customer, "severity": 3, "opened_via": CaseOpenedVia.AGENT,
        "queue": Queue.objects.get(tenant=customer.tenant, is_default=True), "opened_at": now, "updated_at": now,
        **fields,
    }  # fmt: skip
    return Case.objects.create(**values)


def test_a_customer_has_at_most_one_open_case(tenant_a):
    customer = CustomerFactory(tenant=tenant_a)
    _case(customer)
    for status in (CaseStatus.OPEN, CaseStatus.WAITING_ON_CUSTOMER):
        with pytest.raises(IntegrityError), transaction.atomic():
            _case(customer, status=status)
    # Resolved cases do not count: the customer's next case opens beside them.
    _case(customer, status=CaseStatus.RESOLVED, outcome=CaseOutcome.FALSE_POSITIVE)
    _case(CustomerFactory(tenant=tenant_a))
    assert Case.objects.filter(customer=customer).count() == 2


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(CaseStatus.RESOLVED, ""), (CaseStatus.OPEN, CaseOutcome.ACCOUNT_SECURED), (CaseStatus.RESOLVED, "nonsense")],
)
def test_an_outcome_is_set_when_and_only_when_the_case_is_resolved(tenant_a, status, outcome):
    with pytest.raises(IntegrityError), transaction.atomic():
        _case(CustomerFactory(tenant=tenant_a), status=status, outcome=outcome)
