"""Writes of the alerts app: event ingestion, customer records, the alert lifecycle."""

import logging

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.selectors import user_has_tenant_perm
from alerts.models import (
    ACTIVE_STATUSES,
    ALERT_TRANSITIONS,
    AccountEvent,
    Alert,
    AlertStatus,
    Customer,
    CustomerContactChange,
    IngestSettings,
    Severity,
    SlaPolicy,
)
from alerts.raising import alerts_announce
from alerts.selectors import ALERT_CHANGE_PERM, ALERT_REASSIGN_PERM, alert_held_against
from alerts.sla import sla_due_now
from alerts.validation import ValidEvent
from audit.masking import audit_diff, mask
from audit.models import Action
from audit.services import audit_record, audit_record_many
from config.bulk import BulkInsert, BulkUpdate

logger = logging.getLogger(__name__)

CONTACT_FIELDS = ("email", "phone", "display_name", "locale", "channels")
PERSONAL_FIELDS = {"email", "phone", "display_name"}
MASKED_FIELDS = {"email": "email_masked", "phone": "phone_masked"}  # what staff lists show, kept beside


def contact_digest(name: str, value: str) -> str:
    """A keyed digest of one contact detail: ingestion compares digests, not decrypted values, to
    tell whether an account's details changed (they rarely do; decrypting every mention is slow)."""
    return salted_hmac("alerts.contact_digest", f"{name}\0{value}", algorithm="sha256").hexdigest()[:32]


_CUSTOMER_UPDATE = BulkUpdate(
    Customer, fields=[*CONTACT_FIELDS, *MASKED_FIELDS.values(), "contact_digests", "updated_at"]
)


def _masked(account: dict) -> dict:
    """The masked forms of the contacts this account object gives."""
    return {masked: mask(account[name]) for name, masked in MASKED_FIELDS.items() if name in account}


def customers_upsert(*, tenant, accounts: list[dict], key_prefix: str = "") -> dict[str, int]:
    """The ids of the customers these `account` objects name, created or updated (the last
    mention of each wins). Contact changes are recorded in the audit trail, masked, and a replaced
    email or phone is kept (CustomerContactChange) for notices to the previous address."""
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
            **_masked(account),
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
        rows, previous = [], []
        for customer in Customer.objects.filter(pk__in=maybe_changed):
            account = latest[customer.external_id]
            before = {name: getattr(customer, name) for name in CONTACT_FIELDS if name in account}
            after = {name: account[name] for name in CONTACT_FIELDS if name in account}
            previous += _contact_changes(customer, before, after, now)
            diff = audit_diff(before, after, personal=PERSONAL_FIELDS)
            for name, value in {**after, **_masked(account)}.items():
                setattr(customer, name, value)
            customer.contact_digests = _digests(customer.contact_digests, account)
            rows.append(customer)
            if diff:  # else only the digests were stale (say, after a key change)
                records.append((customer, Action.UPDATE, diff))
        _customers_save(rows, now)
        CustomerContactChange.objects.bulk_create(previous)
    if records:
        audit_record_many(
            [
                {"action": action, "tenant": tenant, "target": customer, "changes": diff,
                 "metadata": {"via": "event_api", "key": key_prefix}}
                for customer, action, diff in records
            ]
        )  # fmt: skip
    return ids


def _contact_changes(customer: Customer, before: dict, after: dict, now) -> list[CustomerContactChange]:
    """The email or phone a change replaces, kept (encrypted) so that the previous address can be
    told of recoveries and contact changes (alerts.notifications.planning)."""
    return [
        CustomerContactChange(
            customer=customer, field=name, old_value=before[name], old_masked=mask(before[name]),
            old_digest=contact_digest(name, before[name]), changed_at=now,
        )
        for name in ("email", "phone")
        if before.get(name) and name in after and after[name] != before[name]
    ]  # fmt: skip


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


# While a detection task waits in the broker unstarted, ingestion queues no other: that task's
# chunks claim every event committed before it starts (alerts.detection), so one task per request
# would only queue work already done (each cost the worker about 2.5 ms of CPU for nothing, more
# than the event itself in a batch). The mark lives in the cache (Redis, shared by the web
# processes and the workers); it expires after DETECTION_PENDING_SECONDS so that a task lost by the
# broker holds nothing back for longer: the next request queues again, and the relay is the last
# resort as before.
DETECTION_PENDING_KEY = "alerts:detection:pending"
DETECTION_PENDING_SECONDS = 10


def detection_enqueue(ids: list[int], *, coalesce: bool | None = None) -> None:
    """Queue detection for these stored events (called after their commit). A publish that fails
    (the broker is down) loses nothing and fails no request: the events stay unprocessed, the
    failure is logged, and the relay (alerts.tasks.events_unprocessed_relay_task) queues them again.

    `coalesce` (by default with a broker, settings.DETECTION_COALESCE; see DETECTION_PENDING_KEY):
    queue nothing while a task waits unstarted, since it will claim these events."""
    from alerts.tasks import events_process_task

    if coalesce is None:
        coalesce = settings.DETECTION_COALESCE
    if coalesce and not _detection_pending_mark():
        return
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


def _detection_pending_mark() -> bool:
    """Mark a detection task as waiting; False if one already was. A cache that cannot answer
    marks nothing and queues: a task too many costs little, one too few delays events."""
    try:
        return cache.add(DETECTION_PENDING_KEY, 1, timeout=DETECTION_PENDING_SECONDS)
    except Exception as error:
        logger.warning("detection: the cache did not answer; queuing anyway", extra={"error": type(error).__name__})
        return True


def detection_task_started() -> None:
    """A detection task has started (before it claims): the next stored event gets a task of its own."""
    try:
        cache.delete(DETECTION_PENDING_KEY)
    except Exception as error:  # the mark expires by itself
        logger.warning("detection: the cache did not answer", extra={"error": type(error).__name__})


class AlertClaimConflict(Exception):  # noqa: N818 (the name the design gives: it is a 409)
    """The alert cannot be claimed, released, reassigned or worked as asked (the API answers 409):
    another staff member holds it, the caller does not, or it is final. The message names at most
    the holder's username."""

    @property
    def message(self) -> str:
        return str(self.args[0])


class AlertTransitionError(ValidationError):
    """The alert's status does not allow this step (say, acknowledging a resolved alert)."""


# The lifecycle steps. One staff member works an alert at a time: while someone holds (has claimed)
# it, only they take its steps, or a supervisor or admin of its tenant (a role carrying
# alerts.reassign_alert) stepping in, who leaves the holder as it is. Anyone else gets
# AlertClaimConflict (409), after the status check (a final alert says so first). The rule is
# alerts.selectors.alert_held_against, which the alert page follows to offer the steps.


def alert_acknowledge(*, alert: Alert, actor) -> Alert:
    """An agent has picked the alert up: it stays active (new occurrences still fold into it).
    Picking up an alert nobody holds claims it for `actor` (in the same audited change): an
    acknowledged alert always has someone working it, and it is the first response for its SLA,
    as a claim is. An alert someone else holds stays theirs (see above for who may step in)."""
    return _alert_transition(alert=alert, actor=actor, to=AlertStatus.ACKNOWLEDGED, note="")


def alert_resolve(*, alert: Alert, actor, note: str = "") -> Alert:
    """The account is secured or the customer confirmed the activity. Final. The holder stays (who
    worked the alert is history); an alert nobody holds is resolved without claiming it (closed_by
    says who). Refused while someone else holds it (see above)."""
    return _alert_transition(alert=alert, actor=actor, to=AlertStatus.RESOLVED, note=note)


def alert_dismiss(*, alert: Alert, actor, note: str) -> Alert:
    """Not a security problem (a false positive). Final, and it needs a reason. Like resolving: the
    holder stays, nobody is claimed, and it is refused while someone else holds it."""
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
    # No actor: the customer's own answer ("Yes, it was me"), which no agent's hold stands in the way of.
    holder = alert_held_against(user=actor, alert=locked) if actor is not None else None
    if holder is not None:
        wanted = {AlertStatus.ACKNOWLEDGED: "acknowledge", AlertStatus.RESOLVED: "resolve"}.get(to, "dismiss")
        raise AlertClaimConflict(f"{holder.username} holds this alert: only they or a supervisor may {wanted} it.")
    now = timezone.now()
    before, after = {"status": locked.status}, {"status": to}
    locked.status, locked.updated_at = to, now
    fields = ["status", "updated_at"]
    if to == AlertStatus.ACKNOWLEDGED:
        locked.acknowledged_at, locked.acknowledged_by = now, actor
        fields += ["acknowledged_at", "acknowledged_by", "first_response_at"]
        locked.first_response_at = locked.first_response_at or now
        if locked.assignee_id is None:  # picked up: the actor holds it now
            locked.assignee, locked.assigned_at = actor, now
            fields += ["assignee", "assigned_at"]
            before["assignee"], after["assignee"] = None, actor.username
    else:  # the assignee stays: who worked the alert is history
        locked.closed_at, locked.closed_by, locked.resolution_note = now, actor, note
        fields += ["closed_at", "closed_by", "resolution_note"]
    locked.sla_due_at = sla_due_now(locked)  # resolution next, or none once final
    locked.save(update_fields=[*fields, "sla_due_at"])
    audit_record(
        action=Action.UPDATE,
        actor=actor,
        tenant=locked.tenant,
        target=locked,
        changes=audit_diff(before, after),
        reason=note,
    )
    _alert_announce(locked)
    return locked


def _alert_announce(alert: Alert) -> None:
    """Tell the desk an alert changed, once this commits: ids and states only, and the holder's
    username (shown to staff, as the contract's `assignee` is): what the desk's queue signals carry."""
    payload = {"id": alert.pk, "type": alert.type, "severity": alert.severity, "status": alert.status}
    payload["assignee"] = alert.assignee.username if alert.assignee_id else None
    alerts_announce([(alert.tenant_id, "alert.updated", payload)])


def _alert_lock_active(alert: Alert, verb: str) -> Alert:
    """The alert locked and read again (concurrent claims are judged one after the other against
    what the first left); a final one is refused."""
    # No select_related here: after waiting on a concurrent claim, PostgreSQL re-reads the locked
    # row but not the rows joined to it, so a joined assignee would be the stale one (none).
    locked = Alert.objects.select_for_update().get(pk=alert.pk)
    if locked.status not in ACTIVE_STATUSES:
        raise AlertClaimConflict(f"This alert is {locked.get_status_display().lower()}: it can no longer be {verb}.")
    return locked


def _alert_assign(*, locked: Alert, actor, to, now, first_response: bool) -> Alert:
    before = {"assignee": locked.assignee.username if locked.assignee_id else None}
    locked.assignee, locked.assigned_at, locked.updated_at = to, (now if to is not None else None), now
    fields = ["assignee", "assigned_at", "updated_at"]
    if first_response and locked.first_response_at is None:
        locked.first_response_at = now
        locked.sla_due_at = sla_due_now(locked)
        fields += ["first_response_at", "sla_due_at"]
    locked.save(update_fields=fields)
    audit_record(
        action=Action.UPDATE,
        actor=actor,
        tenant=locked.tenant,
        target=locked,
        changes=audit_diff(before, {"assignee": to.username if to is not None else None}),
    )
    _alert_announce(locked)
    return locked


@transaction.atomic
def alert_claim(*, alert: Alert, actor) -> Alert:
    """`actor` takes the alert to work it: one staff member per alert. Claiming one's own alert
    again changes nothing; an alert someone else holds, or a final one, raises AlertClaimConflict.
    The first claim (or acknowledgement) is the alert's first response for its SLA."""
    locked = _alert_lock_active(alert, "claimed")
    if locked.assignee_id == actor.pk:
        return locked
    if locked.assignee_id is not None:
        raise AlertClaimConflict(f"{locked.assignee.username} holds this alert.")
    return _alert_assign(locked=locked, actor=actor, to=actor, now=timezone.now(), first_response=True)


@transaction.atomic
def alert_release(*, alert: Alert, actor) -> Alert:
    """The holder gives the alert back to the queue; a supervisor or admin of its tenant (a role
    carrying alerts.reassign_alert) may release anyone's. Anyone else gets AlertClaimConflict."""
    locked = _alert_lock_active(alert, "released")
    if locked.assignee_id is None:
        raise AlertClaimConflict("Nobody holds this alert.")
    if locked.assignee_id != actor.pk and not user_has_tenant_perm(
        user=actor, tenant=locked.tenant, perm=ALERT_REASSIGN_PERM
    ):
        raise AlertClaimConflict("You do not hold this alert.")
    return _alert_assign(locked=locked, actor=actor, to=None, now=timezone.now(), first_response=False)


@transaction.atomic
def alert_reassign(*, alert: Alert, actor, to) -> Alert:
    """A supervisor (a role carrying alerts.reassign_alert in the alert's tenant) hands the alert to
    `to`, a staff member who may work the tenant's alerts (ValidationError otherwise). Not a first
    response: the SLA clock runs until someone claims or acknowledges it."""
    if not user_has_tenant_perm(user=actor, tenant=alert.tenant, perm=ALERT_REASSIGN_PERM):
        raise PermissionDenied("Your role may not reassign alerts of this client.")
    if to is None or not user_has_tenant_perm(user=to, tenant=alert.tenant, perm=ALERT_CHANGE_PERM):
        raise ValidationError({"username": "No staff member by that name works this client's alerts."})
    locked = _alert_lock_active(alert, "reassigned")
    if locked.assignee_id == to.pk:
        return locked
    return _alert_assign(locked=locked, actor=actor, to=to, now=timezone.now(), first_response=False)


SLA_MAX_MINUTES = 525_600  # a year: anything longer is a typo, not a service level


@transaction.atomic
def sla_policy_set(
    *, tenant, severity: int, first_response_minutes: int, resolution_minutes: int, actor=None
) -> SlaPolicy:
    """Set a tenant's SLA for one severity (replacing its earlier one); audited. Applies to alerts
    raised from now on (and to an alert whose severity rises): alerts already timed keep theirs."""
    if isinstance(severity, bool) or severity not in Severity.values:
        raise ValidationError({"severity": f"Give one of {', '.join(map(str, Severity.values))}."})
    for name, value in (("first_response_minutes", first_response_minutes), ("resolution_minutes", resolution_minutes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError({name: "Give a whole number of minutes, 1 or more."})
        if value > SLA_MAX_MINUTES:
            raise ValidationError({name: f"Give at most {SLA_MAX_MINUTES:,} minutes (a year)."})
    if first_response_minutes > resolution_minutes:
        raise ValidationError({"first_response_minutes": "The first response cannot be due after the resolution."})
    policy = SlaPolicy.objects.select_for_update().filter(tenant=tenant, severity=severity).first()
    before = (
        {}
        if policy is None
        else {"first_response_minutes": policy.first_response_minutes, "resolution_minutes": policy.resolution_minutes}
    )
    after = {"first_response_minutes": first_response_minutes, "resolution_minutes": resolution_minutes}
    if policy is None:
        policy = SlaPolicy(tenant=tenant, severity=severity)
    changes = audit_diff(before, after)
    if changes:
        policy.first_response_minutes, policy.resolution_minutes = first_response_minutes, resolution_minutes
        policy.save()
        audit_record(
            action=Action.UPDATE if before else Action.CREATE,
            actor=actor,
            tenant=tenant,
            target=policy,
            changes=changes,
            metadata={"severity": severity},
        )
    return policy


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
