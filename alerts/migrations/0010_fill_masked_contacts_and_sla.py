"""Fill what 0009 added for the rows stored before it: the masked contacts of existing customers
(decrypted once, here, so that lists never need to), and the first response and SLA due times of
existing alerts (the default service levels: no tenant has its own policy yet)."""

from datetime import timedelta

from django.db import migrations
from django.db.models import F, Q

# alerts.sla.DEFAULT_SLA as it was when this migration was written: (first response, resolution) minutes.
DEFAULT_SLA = {4: (15, 240), 3: (60, 480), 2: (240, 1440), 1: (1440, 4320)}
ACTIVE = ("open", "acknowledged")


def _mask(value):
    # audit.masking.mask as it was when this migration was written.
    if value is None or value == "":
        return value
    text = str(value)
    if "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain[:1]}***"
    if len(text) <= 4:
        return "***"
    return f"{text[:1]}***{text[-2:]}"


def fill_masked(apps, schema_editor):
    Customer = apps.get_model("alerts", "Customer")
    with_contacts = Customer.objects.filter(~Q(email="") | ~Q(phone="")).only("pk", "email", "phone").order_by("pk")
    batch = []
    for customer in with_contacts.iterator(chunk_size=2000):
        customer.email_masked, customer.phone_masked = _mask(customer.email or ""), _mask(customer.phone or "")
        batch.append(customer)
        if len(batch) >= 1000:
            Customer.objects.bulk_update(batch, ["email_masked", "phone_masked"])
            batch = []
    if batch:
        Customer.objects.bulk_update(batch, ["email_masked", "phone_masked"])


def fill_sla(apps, schema_editor):
    Alert = apps.get_model("alerts", "Alert")
    Alert.objects.filter(acknowledged_at__isnull=False).update(first_response_at=F("acknowledged_at"))
    for severity, (first, resolution) in DEFAULT_SLA.items():
        Alert.objects.filter(status__in=ACTIVE, severity=severity).update(
            first_response_due_at=F("created_at") + timedelta(minutes=first),
            resolution_due_at=F("created_at") + timedelta(minutes=resolution),
        )
    active = Alert.objects.filter(status__in=ACTIVE)
    active.filter(first_response_at__isnull=True).update(sla_due_at=F("first_response_due_at"))
    active.filter(first_response_at__isnull=False).update(sla_due_at=F("resolution_due_at"))


class Migration(migrations.Migration):
    dependencies = [("alerts", "0009_alert_claim_sla_masked_contacts")]

    operations = [
        migrations.RunPython(fill_masked, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(fill_sla, migrations.RunPython.noop, elidable=True),
    ]
