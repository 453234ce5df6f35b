"""Small factories (factory-boy) for tests that need a tenant, a customer, an account event or an
alert, without running ingestion and detection to get one. Tests of detection feed events through
the pipeline instead (alerts/tests/test_detection.py)."""

from datetime import UTC, datetime, timedelta

import factory
from factory.django import DjangoModelFactory

from accounts import services as account_services
from accounts.models import Tenant
from alerts.models import AccountEvent, Alert, AlertStatus, AlertType, Customer, EventType, Severity
from audit.masking import mask

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class TenantFactory(DjangoModelFactory):
    """A tenant made through `tenant_create`, as an operator would make one (audited)."""

    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"client-{n}")
    name = factory.Sequence(lambda n: f"Client {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return account_services.tenant_create(**kwargs)


class CustomerFactory(DjangoModelFactory):
    class Meta:
        model = Customer

    tenant = factory.SubFactory(TenantFactory)
    external_id = factory.Sequence(lambda n: f"account-{n}")
    created_at = T0
    updated_at = T0
    # Stored beside the encrypted contacts, as customers_upsert writes them.
    email_masked = factory.LazyAttribute(lambda c: mask(c.email) if getattr(c, "email", "") else "")
    phone_masked = factory.LazyAttribute(lambda c: mask(c.phone) if getattr(c, "phone", "") else "")


class AccountEventFactory(DjangoModelFactory):
    class Meta:
        model = AccountEvent

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    external_id = factory.Sequence(lambda n: f"ev-{n}")
    type = EventType.MFA_DISABLED
    occurred_at = T0
    received_at = factory.LazyAttribute(lambda event: event.occurred_at + timedelta(seconds=1))
    context = factory.Dict({"factor": "totp"})


class AlertFactory(DjangoModelFactory):
    """An open alert about a customer, with one event as its evidence (`evidence=[...]` for others,
    `evidence=[]` for none)."""

    class Meta:
        model = Alert
        skip_postgeneration_save = True

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    type = AlertType.TWO_FACTOR
    rule = "mfa_change"
    severity = Severity.HIGH
    status = AlertStatus.OPEN
    reason = "Two-factor authentication was turned off."
    dedupe_key = factory.Sequence(lambda n: f"mfa_change:{n}")
    first_seen_at = T0
    last_seen_at = factory.SelfAttribute("first_seen_at")
    created_at = factory.SelfAttribute("first_seen_at")
    updated_at = factory.SelfAttribute("first_seen_at")

    @factory.post_generation
    def evidence(self, create, extracted, **kwargs):
        if not create:
            return
        events = extracted if extracted is not None else [AccountEventFactory(customer=self.customer)]
        self.evidence.add(*events)
