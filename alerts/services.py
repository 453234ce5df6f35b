"""Writes of the alerts app: event ingestion, customer records, the alert lifecycle."""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from alerts.models import ALERT_TRANSITIONS, AccountEvent, Alert, AlertStatus, Customer, IngestSettings
from alerts.raising import alerts_announce
from alerts.validation import ValidEvent
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record, audit_record_many
from config.bulk import BulkInsert, BulkUpdate

logger = logging.getLogger(__name__)

CONTACT_FIELDS = ("email", "phone", "display_name", "locale", "channels")
PERSONAL_FIELDS = {"email", "phone", "display_name"}


def contact_digest(name: str, value: str) -> str:
    """A keyed digest of one contact detail: ingestion compares digests, not decrypted values, to
    tell whether an account's details changed (they rarely do; decrypting every mention is slow)."""
    return salted_hmac("alerts.contact_digest", f"{name}\0{value}", algorithm="sha256").hexdigest()[:32]


_CUSTOMER_UPDATE = BulkUpdate(Customer, fields=[*CONTACT_FIELDS, "contact_digests", "updated_at"])


def customers_upsert(*, tenant, accounts: list[dict], key_prefix: str = "") -> dict[str, int]:
    """The ids of the customers these `account` objects name, created or updated (the last
    mention of each wins). Contact changes are recorded in the audit trail, masked."""
    now = timezone.now()
    latest: dict[str, dict] = {}
    for account in accounts:
        latest.setdefault(account["external_id"], {}).update(account)
    # Known customers without decrypting anything: their ids, digests and plain fields.
    known = {
        external_id: (pk, digests, locale, channels)
        for pk, external_id, digests, locale, channels in Customer.objects.filter(
            tenant=tenant, external_id__any=list(latest)
        ).values_list("pk", "external_id", "contact_digests", "locale", "channels")
    }
    ids = {external_id: row[0] for external_id, row in known.items()}
    missing = [
        Customer(
            tenant=tenant,
            external_id=external_id,
            created_at=now,
            updated_at=now,
            contact_digests=_digests({}, account),
            **{name: account[name] for name in CONTACT_FIELDS if name in account},
        )
        for external_id, account in latest.items()
        if external_id not in known
    ]
    records = []
    if missing:
        Customer.objects.bulk_create(missing, ignore_conflicts=True)  # a concurrent batch may win: fine
        created = dict(
            Customer.objects.filter(tenant=tenant, external_id__in=[m.external_id for m in missing]).values_list(
                "external_id", "pk"
            )
        )
        ids.update(created)
        for customer in missing:
            customer.pk = created[customer.external_id]
            after = {
                name: latest[customer.external_id][name]
                for name in CONTACT_FIELDS
                if name in latest[customer.external_id]
            }
            records.append((customer, Action.CREATE, audit_diff({}, after, personal=PERSONAL_FIELDS)))
    maybe_changed = [row[0] for external_id, row in known.items() if _differs(row, latest[external_id])]
    if maybe_changed:
        rows = []
        for customer in Customer.objects.filter(pk__in=maybe_changed):
            account = latest[customer.external_id]
            before = {name: getattr(customer, name) for name in CONTACT_FIELDS if name in account}
            after = {name: account[name] for name in CONTACT_FIELDS if name in account}
            diff = audit_diff(before, after, personal=PERSONAL_FIELDS)
            for name, value in after.items():
                setattr(customer, name, value)
            customer.contact_digests = _digests(customer.contact_digests, account)
            rows.append(customer)
            if diff:  # else only the digests were stale (say, after a key change)
                records.append((customer, Action.UPDATE, diff))
        _customers_save(rows, now)
    if records:
        audit_record_many(
            [
                {"action": action, "tenant": tenant, "target": customer, "changes": diff,
                 "metadata": {"via": "event_api", "key": key_prefix}}
                for customer, action, diff in records
            ]
        )  # fmt: skip
    return ids


def _digests(stored: dict, account: dict) -> dict:
    return {**stored, **{name: contact_digest(name, account[name]) for name in PERSONAL_FIELDS if name in account}}


def _differs(row: tuple, account: dict) -> bool:
    _, digests, locale, channels = row
    for name in PERSONAL_FIELDS:
        if name in account and digests.get(name) != contact_digest(name, account[name]):
            return True
    return ("locale" in account and account["locale"] != locale) or (
        "channels" in account and account["channels"] != channels
    )


def _customers_save(customers: list[Customer], now) -> None:
    # One statement, many parameter rows (Django's bulk_update builds a CASE per field per row).
    for customer in customers:
        customer.updated_at = now
    _CUSTOMER_UPDATE.execute(customers)


_EVENT_COLUMNS = ("tenant", "customer", "external_id", "type", "occurred_at", "received_at", "ip", "context")
# ON CONFLICT: a concurrent request with the same ids stored them first; RETURNING names the rows
# this request stored. On PostgreSQL the rows travel as arrays: one short statement whatever the
# batch size, so psycopg parses it once instead of thousands of placeholders every time (and on
# the embedded default, a placeholder per value, 500 rows at a time).
_EVENT_INSERT_PG = BulkInsert(
    AccountEvent,
    fields=_EVENT_COLUMNS,
    shared=["tenant", "received_at"],
    conflict=["tenant", "external_id"],
    returning=["id", "external_id"],
    arrays=True,
)


def _events_insert(*, tenant_id: int, customers: dict[str, int], events: list[ValidEvent], now) -> list[tuple]:
    """Insert these events, skipping ids already stored; (id, external_id) of the rows stored."""
    rows = [(customers[e.account["external_id"]], e.id, e.type, e.occurred_at, e.ip, e.context) for e in events]
    return _EVENT_INSERT_PG.execute(rows, shared={"tenant": tenant_id, "received_at": now})


@transaction.atomic
def events_ingest(*, tenant, events: list[ValidEvent], key_prefix: str = "") -> tuple[int, int, list[int]]:
    """Store the new events of a validated batch, durably, and hand them to detection once the
    transaction commits. An event id seen before for this tenant is a duplicate: not stored, not
    processed, whatever its body. Returns (accepted, duplicates, ids of the accepted)."""
    unique: dict[str, ValidEvent] = {}
    for event in events:
        unique.setdefault(event.id, event)
    seen = set(
        AccountEvent.objects.filter(tenant=tenant, external_id__any=list(unique)).values_list("external_id", flat=True)
    )
    new = [event for event_id, event in unique.items() if event_id not in seen]
    if not new:
        return 0, len(events), []
    customers = customers_upsert(tenant=tenant, accounts=[e.account for e in new], key_prefix=key_prefix)
    stored = _events_insert(tenant_id=tenant.pk, customers=customers, events=new, now=timezone.now())
    occurred = {e.id: e.occurred_at for e in new}
    ids = [pk for pk, external_id in sorted(stored, key=lambda row: (occurred[row[1]], row[0]))]
    transaction.on_commit(lambda: detection_enqueue(ids))
    return len(ids), len(events) - len(ids), ids


def detection_enqueue(ids: list[int]) -> None:
    """Queue detection for these stored events (called after their commit). A publish that fails
    (the broker is down) loses nothing and fails no request: the events stay unprocessed, the
    failure is logged, and the relay (alerts.tasks.events_unprocessed_relay_task) queues them again."""
    from alerts.tasks import events_process_task

    # A task per 500 events: each publish costs a few milliseconds of the request, and the worker
    # works through a task in chunks (alerts.detection.CHUNK) anyway.
    for start in range(0, len(ids), 500):
        try:
            events_process_task.delay(ids[start : start + 500])
        except Exception as error:  # the events are committed: the relay will queue them
            logger.warning(
                "could not queue detection; the relay will queue these events again",
                extra={"events": len(ids) - start, "error": f"{type(error).__module__}.{type(error).__name__}"},
            )
            return


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
        now_status, wanted = locked.get_status_display().lower(), AlertStatus(to).label.lower()
        if locked.status == to:
            raise AlertTransitionError(f"This alert was already {wanted}.")
        raise AlertTransitionError(f"This alert is {now_status}: it can no longer be {wanted}.")
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
    alerts_announce([(locked.tenant_id, "alert.updated", payload)])  # sent once this commits
    return locked


@transaction.atomic
def rule_setting_set(
    *, tenant, rule: str, actor, enabled: bool = True, severity: int | None = None, params: dict | None = None
):
    """Set a tenant's override of one detection rule, checked against what the rule declares:
    an unknown rule or setting, a wrong type or a value out of range is refused here
    (ValidationError), never discovered by the worker. Replaces the earlier override; audited."""
    # Imported here: the rules registry is detection's, and this keeps the module's imports as they were.
    from alerts.models import RuleSetting, Severity
    from alerts.rules import RULES

    registered = RULES.get(rule)
    if registered is None:
        raise ValidationError({"rule": "No such rule."})
    if not isinstance(enabled, bool):
        raise ValidationError({"enabled": "Give true or false."})
    if severity is not None and (isinstance(severity, bool) or severity not in Severity.values):
        raise ValidationError({"severity": f"Give one of {', '.join(map(str, Severity.values))}, or none."})
    cleaned = registered.params_clean(params or {})
    setting = RuleSetting.objects.select_for_update().filter(tenant=tenant, rule=rule).first()
    before = {} if setting is None else {"enabled": setting.enabled, "severity": setting.severity, **setting.params}
    if setting is None:
        setting = RuleSetting(tenant=tenant, rule=rule)
    setting.enabled, setting.severity, setting.params = enabled, severity, cleaned
    setting.save()
    audit_record(
        action=Action.UPDATE if before else Action.CREATE,
        actor=actor,
        tenant=tenant,
        target=setting,
        changes=audit_diff(before, {"enabled": enabled, "severity": severity, **cleaned}),
    )
    return setting


RATE_LIMIT_MAX = 1_000_000  # events per second: far above what one tenant sends; 0 would stop ingestion


@transaction.atomic
def ingest_settings_update(
    *, tenant, signature_required: bool | None = None, rate_limit_per_second: int | None = None, actor=None
) -> IngestSettings:
    """Change a tenant's ingestion settings (None leaves a setting as it is); the change is
    recorded. The settings row is created with its defaults if the tenant has none yet."""
    if rate_limit_per_second is not None and not 1 <= rate_limit_per_second <= RATE_LIMIT_MAX:
        raise ValidationError(
            {"rate_limit_per_second": f"The rate limit must be between 1 and {RATE_LIMIT_MAX:,} events per second."}
        )
    settings, _ = IngestSettings.objects.select_for_update().get_or_create(tenant=tenant)
    before = {
        "signature_required": settings.signature_required,
        "rate_limit_per_second": settings.rate_limit_per_second,
    }
    wanted = {"signature_required": signature_required, "rate_limit_per_second": rate_limit_per_second}
    after = {**before, **{name: value for name, value in wanted.items() if value is not None}}
    changes = audit_diff(before, after)
    if changes:
        for name, value in after.items():
            setattr(settings, name, value)
        settings.save(update_fields=list(changes))
        audit_record(action=Action.UPDATE, actor=actor, tenant=tenant, target=settings, changes=changes)
    return settings
