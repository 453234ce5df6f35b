"""Writes of the alerts app: event ingestion, customer records, the alert lifecycle."""

import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from alerts.detection import alert_announce
from alerts.models import ALERT_TRANSITIONS, AccountEvent, Alert, AlertStatus, Customer
from alerts.validation import ValidEvent
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record, audit_record_many

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


class AlertTransitionError(ValidationError):
    """The alert's status does not allow this step (say, acknowledging a resolved alert)."""


def alert_acknowledge(*, alert: Alert, actor) -> Alert:
    """An agent has picked the alert up: it stays active (new occurrences still fold into it)."""
    return _alert_transition(alert=alert, actor=actor, to=AlertStatus.ACKNOWLEDGED, note="")


def alert_resolve(*, alert: Alert, actor, note: str = "") -> Alert:
    """The account is secured or the customer confirmed the activity. Final."""
    return _alert_transition(alert=alert, actor=actor, to=AlertStatus.RESOLVED, note=note)


def alert_dismiss(*, alert: Alert, actor, note: str) -> Alert:
    """Not a security problem (a false positive). Final, and it needs a reason."""
    if not note.strip():
        raise ValidationError({"note": "Say why the alert is dismissed."})
    return _alert_transition(alert=alert, actor=actor, to=AlertStatus.DISMISSED, note=note)


@transaction.atomic
def _alert_transition(*, alert: Alert, actor, to: str, note: str) -> Alert:
    note = note.strip()
    if len(note) > Alert._meta.get_field("resolution_note").max_length:
        raise ValidationError({"note": "Keep the note under 500 characters."})
    # Locked and read again: two agents acting on one alert at once are taken one after the other,
    # and the second is judged against the status the first left.
    locked = Alert.objects.select_for_update().get(pk=alert.pk)
    if to not in ALERT_TRANSITIONS[locked.status]:
        raise AlertTransitionError(
            f"A {locked.get_status_display().lower()} alert cannot be {AlertStatus(to).label.lower()}."
        )
    now = timezone.now()
    before = {"status": locked.status}
    locked.status, locked.updated_at = to, now
    fields = ["status", "updated_at"]
    if to == AlertStatus.ACKNOWLEDGED:
        locked.acknowledged_at, locked.acknowledged_by = now, actor
        fields += ["acknowledged_at", "acknowledged_by"]
    else:
        locked.closed_at, locked.closed_by, locked.resolution_note = now, actor, note
        fields += ["closed_at", "closed_by", "resolution_note"]
    locked.save(update_fields=fields)
    audit_record(
        action=Action.UPDATE,
        actor=actor,
        tenant=locked.tenant,
        target=locked,
        changes=audit_diff(before, {"status": to}),
        reason=note,
    )
    payload = {"id": locked.pk, "type": locked.type, "severity": locked.severity, "status": to}
    transaction.on_commit(lambda: alert_announce(locked.tenant_id, "alert.updated", payload))
    return locked
