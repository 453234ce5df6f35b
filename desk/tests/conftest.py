"""Fixtures for the case workspace: a customer of tenant A with contacts on file, an alert about
them in the default queue, and the case an agent opened from it; a takeover queue and a specialist
who works only that one."""

import pytest

from accounts.models import Role
from accounts.testing import make_staff
from alerts.models import AlertType, Severity
from alerts.tests.factories import AlertFactory, CustomerFactory
from desk.services import case_open, queue_create, queue_grant

EMAIL, PHONE, NAME = "alice@example.com", "+33612345678", "Alice Martin"


@pytest.fixture
def customer_a(tenant_a):
    return CustomerFactory(tenant=tenant_a, external_id="acct-4471", email=EMAIL, phone=PHONE, display_name=NAME)


@pytest.fixture
def alert_a(customer_a):
    """A high two-factor alert: tenant A's default queue takes it."""
    return AlertFactory(customer=customer_a)


@pytest.fixture
def case_a(alert_a, agent):
    case, _ = case_open(actor=agent, alert=alert_a)
    return case


@pytest.fixture
def takeover_queue(tenant_a):
    return queue_create(tenant=tenant_a, slug="takeover", name="Takeover", alert_types=[AlertType.ACCOUNT_TAKEOVER])


@pytest.fixture
def specialist(tenant_a, takeover_queue):
    """An agent of tenant A who works the takeover queue only."""
    user = make_staff("specialist", role=Role.AGENT, tenants=[tenant_a])
    queue_grant(queue=takeover_queue, user=user)
    return user


@pytest.fixture
def takeover_alert(tenant_a, takeover_queue):
    return AlertFactory(
        customer=CustomerFactory(tenant=tenant_a, external_id="acct-9000"), type=AlertType.ACCOUNT_TAKEOVER,
        rule="account_takeover", severity=Severity.CRITICAL,
    )  # fmt: skip
