"""Planning notifications in the transaction that raises their alerts (a transactional outbox).

`notifications_plan` is called by alerts.raising.AlertBook.write inside a detection chunk's
transaction, with the chunk's alerts: it decides who hears of each alert on which channel, writes
the rows in one statement for the whole chunk, and queues the send task once the chunk commits. A
chunk costs a fixed handful of queries whatever its number of alerts (settings, contacts, previous
contacts when a rule asks for them, one insert), and none when no alert is to be told.

Who hears what:
- An alert the tenant notifies (its type among `notify_types`, severity at least `min_severity`)
  goes to the customer's opted-in channels (`Customer.channels`).
- A critical one (NotificationSettings.critical, or critical severity) goes to every channel on
  file, whatever the opt-outs, and ignores quiet hours.
- A recovery, or a change of contact details (EVERY_ADDRESS_RULES), goes to every channel on file,
  like a critical one, whatever the tenant's notify_types and the customer's opt-outs, and also to
  each address replaced within `previous_contact_days` (purpose previous_contact; NIST SP
  800-63B-4: "each recovery notifies all notification addresses"; an attacker who changed the
  address first would otherwise be the only one told). A tenant that wants none turns the rule off.
- Each recovery event and each contact change is told on its own (PER_EVENT_RULES): its rows carry
  the event (`event_ref`), so a second one folding into the active alert is told too, and the same
  event planned again (a reprocessed event) meets the unique constraints: exactly once.
- A channel wanted but with no address on file gets a `skipped` row (error "no_address"), so the
  desk can see that the customer could not be told there.
- Alerts of one customer planned together (one login raising a new device and a new network) are
  told in one message per channel and address (_coalesce): every alert keeps its row, and so what
  the desk sees, but one row is sent (the most critical, then most severe alert's; it says all of
  them), the others are `skipped` with error "coalesced", and the rows share a `bundle`, through
  which an answer to the message answers each alert (alerts.notifications.answers). Planned in one
  transaction means raised by one detection chunk: events of a login that arrive together; a later
  alert is told on its own (waiting to coalesce would delay the first message).
- A non-critical row planned within the tenant's quiet hours waits until they end (not_before).
- Any other fold (new findings on an active alert) notifies only if it makes the alert critical, and
  then only on the channels the alert has not used yet: one message per alert, channel and purpose.
"""

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction

from alerts.models import Alert, Customer, Severity
from alerts.notifications.channels import CHANNELS, Contacts
from alerts.notifications.models import (
    CHANNEL_ORDER_DEFAULT,
    CustomerContactChange,
    Notification,
    NotificationSettings,
    Purpose,
    State,
)
from alerts.notifications.selectors import notification_settings_for
from config.bulk import BulkInsert

# Rules whose alerts go to every address on file and to the addresses replaced recently.
EVERY_ADDRESS_RULES = frozenset({"recovery", "contact_change", "rapid_profile_change"})
# Of those, the rules whose every event is told, also when it folds into the active alert.
PER_EVENT_RULES = frozenset({"recovery", "contact_change"})
# Ids per send task.
SEND_BATCH = 100
# Broker priorities of the send task. Under a backlog each alert's first message leaves ahead of the
# others' second to fourth: planning queues the first rows in tasks at URGENT_PRIORITY and the rest
# at REST_PRIORITY. Kombu's Redis transport keeps one list per priority step (0, 3, 6, 9) and a
# worker pops them in that order, 0 first (the reverse of AMQP's); a message without a priority
# counts as 0. So fallbacks, the relay, retries, drills and detection stay ahead of the rest too.
# Being only an order, it changes no row's state: claim, exactly once, retries, rate limits and
# fallback are the same for every task (alerts.notifications.services).
URGENT_PRIORITY = 0
REST_PRIORITY = 9


@dataclass
class PlanItem:
    """An alert raised or folded in this transaction."""

    alert: Alert
    created: bool
    event_types: set[str] = field(default_factory=set)  # of the events that raised or folded it now
    event_id: int = 0  # the latest of those events


def alert_is_critical(settings: NotificationSettings, alert: Alert, event_types: Iterable[str]) -> bool:
    """Whether the tenant's settings make this alert critical (or its severity does)."""
    if alert.severity >= Severity.CRITICAL:
        return True
    selectors = set(settings.critical or ())
    return (
        f"type:{alert.type}" in selectors
        or f"rule:{alert.rule}" in selectors
        or any(f"event:{t}" in selectors for t in event_types)
    )


def quiet_hours_end(settings: NotificationSettings, now: datetime) -> datetime | None:
    """When the tenant's quiet hours in force at `now` end, or None outside them (or without any).
    Local time is the tenant's message-settings time zone (`local_time_zone`, set by
    notification_settings_for)."""
    start, end = settings.quiet_start, settings.quiet_end
    if start is None or end is None or start == end:
        return None
    try:
        zone = ZoneInfo(settings.local_time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    at = local.time()
    if start < end:
        quiet, day = start <= at < end, local.date()
    else:  # over midnight, 22:00 to 07:00
        quiet = at >= start or at < end
        day = local.date() + timedelta(days=1) if at >= start else local.date()
    if not quiet:
        return None
    return datetime.combine(day, end, tzinfo=zone)


def channel_order(settings: NotificationSettings) -> list[str]:
    """The tenant's channel order, with any channel it leaves out at the end."""
    order = [c for c in (settings.channel_order or CHANNEL_ORDER_DEFAULT) if c in CHANNELS]
    return order + [c for c in CHANNELS if c not in order]


_INSERT = BulkInsert(Notification, conflict="any", returning=["id", "alert_id", "state", "not_before"], arrays=True)


def contacts_for(customer_ids: Iterable[int]) -> dict[int, Contacts]:
    rows = Customer.objects.filter(pk__in=set(customer_ids)).only(
        "external_id", "email", "phone", "channels", "email_masked", "phone_masked", "contact_digests"
    )
    return {
        c.pk: Contacts(
            c.external_id, c.email, c.phone, c.channels or {}, c.email_masked, c.phone_masked, c.contact_digests or {}
        )
        for c in rows
    }


def _previous_contacts(customer_ids: set[int], settings: dict[int, NotificationSettings], tenant_of: dict, now):
    """Each customer's addresses replaced within its tenant's window, newest first, one per address."""
    if not customer_ids:
        return {}
    longest = max(settings[tenant_of[c]].previous_contact_days for c in customer_ids)
    changes: dict[int, list[CustomerContactChange]] = {}
    rows = CustomerContactChange.objects.filter(
        customer_id__in=customer_ids, changed_at__gte=now - timedelta(days=longest)
    ).order_by("-changed_at", "-id")
    for change in rows:
        window = timedelta(days=settings[tenant_of[change.customer_id]].previous_contact_days)
        if change.changed_at >= now - window:
            changes.setdefault(change.customer_id, []).append(change)
    return changes


def notifications_plan(items: list[PlanItem], *, now: datetime) -> list[int]:
    """Plan the notifications of these alerts (inside their transaction) and queue the send task
    for those due now once it commits. Returns the ids of the rows written."""
    items = [i for i in items if i.alert.customer_id is not None]
    if not items:
        return []
    settings = notification_settings_for(tenant_ids={i.alert.tenant_id for i in items})
    chosen: list[tuple[PlanItem, bool, bool]] = []  # (item, critical, every address)
    for item in items:
        tenant_settings = settings[item.alert.tenant_id]
        critical = alert_is_critical(tenant_settings, item.alert, item.event_types)
        every = item.alert.rule in EVERY_ADDRESS_RULES
        if every and (item.created or item.alert.rule in PER_EVENT_RULES):
            chosen.append((item, critical, every))
        elif item.created:
            wanted = item.alert.type in (tenant_settings.notify_types or ()) and (
                item.alert.severity >= tenant_settings.min_severity
            )
            if wanted or critical:
                chosen.append((item, critical, every))
        elif critical:
            chosen.append((item, critical, every))
    if not chosen:
        return []
    contacts = contacts_for(i.alert.customer_id for i, _, _ in chosen)
    tenant_of = {i.alert.customer_id: i.alert.tenant_id for i, _, _ in chosen}
    previous = _previous_contacts({i.alert.customer_id for i, _, every in chosen if every}, settings, tenant_of, now)
    rows: list[Notification] = []
    for item, critical, every in chosen:
        tenant_settings = settings[item.alert.tenant_id]
        customer = contacts.get(item.alert.customer_id)
        if customer is None:
            continue
        loud = critical or every  # every channel on file, no quiet hours
        not_before = None if loud else quiet_hours_end(tenant_settings, now)
        event_ref = item.event_id if item.alert.rule in PER_EVENT_RULES else 0
        for channel in channel_order(tenant_settings):
            if not (loud or customer.channels.get(channel) is True):
                continue
            address = CHANNELS[channel].address(customer)
            if address is None and loud and customer.channels.get(channel) is not True:
                # Every channel *on file*: one the customer never gave is not a failure to note.
                continue
            rows.append(
                _row(item.alert, channel, Purpose.ALERT, address, loud, not_before, now, "no_address", event_ref)
            )
        for change in previous.get(item.alert.customer_id, []):
            channel = next((c.key for c in CHANNELS.values() if c.previous_field == change.field), None)
            if channel is None or change.old_digest == customer.digests.get(change.field):
                continue  # changed back: the current address hears anyway
            row = _row(
                item.alert, channel, Purpose.PREVIOUS_CONTACT, (change.old_value, change.old_masked), True, None, now,
                event_ref=event_ref,
            )  # fmt: skip
            row.recipient_digest = change.old_digest
            rows.append(row)
    if not rows:
        return []
    # Coalesced: rows that cannot meet an earlier one in the unique constraints (a new alert's, or a
    # per-event notice's): a fold's row may be dropped as a repeat, and must not silence another.
    fresh = {i.alert.pk: i.alert.severity for i, _, _ in chosen if i.created or i.alert.rule in PER_EVENT_RULES}
    rows = _coalesce(_dedupe_previous(rows), fresh)
    stored = _INSERT.execute([_INSERT.values_of(r) for r in rows])
    first: dict[int, int] = {}  # alert id -> its first row due now
    rest: list[int] = []
    # Ids follow the rows' order (one insert, in plan order): an alert's smallest due id is the
    # first channel in its tenant's order that has an address, the message told first.
    for pk, alert_id, state, not_before in sorted(stored):
        if state == State.QUEUED and not_before is None:
            if alert_id in first:
                rest.append(pk)
            else:
                first[alert_id] = pk
    if first:
        transaction.on_commit(lambda: _enqueue_first_then_rest(list(first.values()), rest))
    return [pk for pk, _, _, _ in stored]


def _enqueue_first_then_rest(first: list[int], rest: list[int]) -> None:
    notifications_enqueue(first)
    if rest:
        notifications_enqueue(rest, priority=REST_PRIORITY)


def _dedupe_previous(rows: list[Notification]) -> list[Notification]:
    """One previous-contact notice per alert and address (an address may have been replaced twice)."""
    seen, kept = set(), []
    for row in rows:
        if row.purpose == Purpose.PREVIOUS_CONTACT:
            key = (row.alert_id, row.channel, row.recipient_digest)
            if key in seen:
                continue
            seen.add(key)
        kept.append(row)
    return kept


def _coalesce(rows: list[Notification], severity: dict[int, int]) -> list[Notification]:
    """One message per customer, channel, purpose and address for the alerts planned together (those
    in `severity`, alert id → severity): the row of the most critical, then most severe, then oldest
    alert is sent (due as soon as any of them is, critical if any is); the others are skipped as
    "coalesced". The customer's rows of such groups share one bundle (per customer, so that any
    channel's link answers every alert)."""
    groups: dict[tuple, list[Notification]] = {}
    for row in rows:
        if (
            row.state == State.QUEUED
            and row.purpose in (Purpose.ALERT, Purpose.PREVIOUS_CONTACT)
            and row.alert_id in severity
        ):
            groups.setdefault((row.customer_id, row.channel, row.purpose, row.recipient_digest), []).append(row)
    bundles: dict[int, uuid.UUID] = {}
    for (customer_id, *_), group in groups.items():
        if len({row.alert_id for row in group}) < 2:
            continue
        group.sort(key=lambda r: (not r.critical, -severity[r.alert_id], r.alert_id))
        lead, bundle = group[0], bundles.setdefault(customer_id, uuid.uuid4())
        lead.critical = any(r.critical for r in group)
        waits = [r.not_before for r in group]
        lead.not_before = None if None in waits else min(waits)
        for row in group:
            row.bundle = bundle
        for row in group[1:]:
            row.state, row.error, row.not_before = State.SKIPPED, "coalesced", None
    return rows


# The contact field each channel's address is: its keyed digest goes on the row, so that a reply
# (an SMS "NO") is matched to the number the message went to, never the account's current one.
_DIGEST_FIELD = {"email": "email", "sms": "phone", "voice": "phone"}


def _row(alert, channel, purpose, address, critical, not_before, now, error="", event_ref=0) -> Notification:
    from alerts.services import contact_digest  # alerts.services imports this module (through raising)

    recipient, masked = address or ("", "")
    field = _DIGEST_FIELD.get(channel)
    return Notification(
        recipient_digest=contact_digest(field, recipient) if recipient and field else "",
        tenant_id=alert.tenant_id,
        alert_id=alert.pk,
        customer_id=alert.customer_id,
        channel=channel,
        purpose=purpose,
        state=State.QUEUED if address else State.SKIPPED,
        critical=critical,
        recipient=recipient,
        recipient_masked=masked[:64],
        idempotency_key=uuid.uuid4(),
        answer_nonce=secrets.token_urlsafe(9),
        not_before=not_before,
        error="" if address else error,
        event_ref=event_ref,
        created_at=now,
        updated_at=now,
    )


def notifications_enqueue(ids: list[int], *, priority: int = URGENT_PRIORITY) -> None:
    """Queue sending for these rows (after their commit), at this broker priority (REST_PRIORITY
    for the messages after an alert's first). A publish that fails loses nothing: the rows stay
    queued and the relay (notifications_relay_task) queues them again."""
    import logging

    from django.conf import settings

    from alerts.notifications.tasks import notification_send_task

    for start in range(0, len(ids), SEND_BATCH):
        try:
            notification_send_task.apply_async(
                (ids[start : start + SEND_BATCH],), queue=settings.NOTIFICATION_QUEUE, priority=priority
            )
        except Exception as error:
            logging.getLogger(__name__).warning(
                "could not queue notifications; the relay will queue them again",
                extra={"notifications": len(ids) - start, "error": f"{type(error).__module__}.{type(error).__name__}"},
            )
            return
