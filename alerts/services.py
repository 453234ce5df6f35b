"""Writes of the alerts app: event ingestion and customer records."""

import uuid

from django.db import transaction
from django.utils import timezone

from alerts.models import AccountEvent, Customer
from alerts.validation import ValidEvent
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record_many

CONTACT_FIELDS = ("email", "phone", "display_name", "locale", "channels")
PERSONAL_FIELDS = {"email", "phone", "display_name"}


def customers_upsert(*, tenant, accounts: list[dict], key_prefix: str = "") -> dict[str, Customer]:
    """The customers these `account` objects name, created or updated (the last mention of each
    wins). Contact changes are recorded in the audit trail, masked."""
    now = timezone.now()
    latest = {}
    for account in accounts:
        latest.setdefault(account["external_id"], {}).update(account)
    found = {c.external_id: c for c in Customer.objects.filter(tenant=tenant, external_id__in=list(latest))}
    missing = [
        Customer(
            tenant=tenant,
            external_id=external_id,
            created_at=now,
            updated_at=now,
            **{name: account[name] for name in CONTACT_FIELDS if name in account},
        )
        for external_id, account in latest.items()
        if external_id not in found
    ]
    if missing:
        Customer.objects.bulk_create(missing, ignore_conflicts=True)  # a concurrent batch may win: fine
        found.update(
            {
                c.external_id: c
                for c in Customer.objects.filter(tenant=tenant, external_id__in=[m.external_id for m in missing])
            }
        )
    records, changed = [], []
    created = {m.external_id for m in missing}
    for external_id, account in latest.items():
        customer = found[external_id]
        if external_id in created:
            after = {name: account[name] for name in CONTACT_FIELDS if name in account}
            records.append((customer, Action.CREATE, audit_diff({}, after, personal=PERSONAL_FIELDS)))
            continue
        before = {name: getattr(customer, name) for name in CONTACT_FIELDS if name in account}
        after = {name: account[name] for name in CONTACT_FIELDS if name in account}
        diff = audit_diff(before, after, personal=PERSONAL_FIELDS)
        if diff:
            for name, value in after.items():
                setattr(customer, name, value)
            customer.updated_at = now
            changed.append(customer)
            records.append((customer, Action.UPDATE, diff))
    if changed:
        Customer.objects.bulk_update(changed, [*CONTACT_FIELDS, "updated_at"])
    if records:
        audit_record_many(
            [
                {"action": action, "tenant": tenant, "target": customer, "changes": diff,
                 "metadata": {"via": "event_api", "key": key_prefix}}
                for customer, action, diff in records
            ]
        )  # fmt: skip
    return found


@transaction.atomic
def events_ingest(*, tenant, events: list[ValidEvent], key_prefix: str = "") -> tuple[int, int, list[int]]:
    """Store the new events of a validated batch, durably, and hand them to detection once the
    transaction commits. An event id seen before for this tenant is a duplicate: not stored, not
    processed, whatever its body. Returns (accepted, duplicates, ids of the accepted)."""
    unique: dict[str, ValidEvent] = {}
    for event in events:
        unique.setdefault(event.id, event)
    seen = set(
        AccountEvent.objects.filter(tenant=tenant, external_id__in=list(unique)).values_list("external_id", flat=True)
    )
    new = [event for event_id, event in unique.items() if event_id not in seen]
    if not new:
        return 0, len(events), []
    customers = customers_upsert(tenant=tenant, accounts=[e.account for e in new], key_prefix=key_prefix)
    now, batch = timezone.now(), uuid.uuid4()
    AccountEvent.objects.bulk_create(
        [
            AccountEvent(
                tenant=tenant,
                customer=customers[e.account["external_id"]],
                external_id=e.id,
                type=e.type,
                occurred_at=e.occurred_at,
                received_at=now,
                ip=e.ip,
                context=e.context,
                batch=batch,
            )  # fmt: skip
            for e in new
        ],
        ignore_conflicts=True,  # a concurrent request with the same ids stored them first
        batch_size=500,
    )
    ids = list(
        AccountEvent.objects.filter(tenant=tenant, external_id__in=[e.id for e in new], batch=batch)
        .order_by("occurred_at", "id")
        .values_list("id", flat=True)
    )
    transaction.on_commit(lambda: _enqueue_detection(ids))
    return len(ids), len(events) - len(ids), ids


def _enqueue_detection(ids: list[int]) -> None:
    from alerts.tasks import events_process_task

    for start in range(0, len(ids), 200):
        events_process_task.delay(ids[start : start + 200])
