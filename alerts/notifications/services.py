"""Writes of notifications: sending (claim, hand to the backend, record), retries, fallback,
the relay and in-doubt rows, provider status, settings, delivery drills.

Exactly once to the provider. A row is claimed in a transaction that locks it (SELECT ... FOR
UPDATE SKIP LOCKED on PostgreSQL, so a second worker skips it; on SQLite every write transaction
holds the database's write lock from its start, and the claim is a conditional update) and sets
`handed_at` before the provider is called. A claimed row is never claimed again until the answer
to that attempt is recorded:
- transactional backends (the development outbox) send inside the claim's transaction: claim,
  message and record commit together. A worker killed at any point before the commit leaves no
  message and an unclaimed row, which the redelivered task (acks_late, reject_on_worker_lost) or
  the relay sends later: exactly once, by atomicity.
- other backends are called after the claim commits, and the answer is recorded in a second
  transaction. A worker killed between the two leaves the row claimed with no answer: "in doubt".
  After NOTIFICATION_IN_DOUBT_AFTER the relay hands it again with the same idempotency key if the
  provider deduplicates on it (Twilio, the push webhook), so the customer gets it once; a provider
  that cannot (SMTP) is not risked twice: the row is failed as in doubt and the next channel tried.
A temporary failure (the provider said no, this time) unclaims the row for a retry with backoff
and jitter, up to MAX_ATTEMPTS, then fails it; a failure for good tries the next channel.

Logs carry ids, counts and error classes; never an address or a message.
"""

import logging
import random
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.selectors import user_has_tenant_perm
from alerts.models import Alert
from alerts.notifications.channels import (
    CHANNELS,
    Backend,
    PermanentFailure,
    Sent,
    TemporaryFailure,
    backend_for,
)
from alerts.notifications.content import RenderReads, message_render, render_reads_for
from alerts.notifications.models import (
    NOTICE_FIELDS,
    DeliveryDrill,
    Notification,
    NotificationSettings,
    Purpose,
    State,
)
from alerts.notifications.planning import (
    _row,
    channel_order,
    contacts_for,
    notifications_enqueue,
)
from alerts.notifications.ratelimit import rate_take
from alerts.notifications.selectors import DRILL_RUN_PERM, notification_settings_for
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record
from config.bulk import BulkUpdate

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
FALLBACK_HORIZON = timedelta(days=1)
BACKOFF_BASE = 2.0  # seconds: 2, 4, 8, 16 (full jitter), capped
BACKOFF_MAX = 300.0
CLAIM_BATCH = 200


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter: a random wait up to 2^attempts seconds, capped."""
    return random.uniform(0.5, min(BACKOFF_MAX, BACKOFF_BASE**attempts))  # noqa: S311 (jitter, not security)


@dataclass
class SendReport:
    handed: int = 0  # to a backend, this run
    deferred: dict[int, float] = field(default_factory=dict)  # id -> seconds (rate limit, retry)
    failed: int = 0


def _due(now: datetime) -> Q:
    return (Q(not_before__isnull=True) | Q(not_before__lte=now)) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def _claimable(ids, now) -> "Q":
    return Q(pk__in=ids, state=State.QUEUED, handed_at__isnull=True) & _due(now)


_HANDED = BulkUpdate(
    Notification,
    fields=["state", "handed_at", "sent_at", "delivered_at", "attempts", "provider", "provider_message_id",
            "receipt_expected", "error", "updated_at"],
)  # fmt: skip
_DEFERRED = BulkUpdate(Notification, fields=["next_attempt_at", "updated_at"])


def notifications_send(*, notification_ids: list[int]) -> SendReport:
    """Send these notifications, those still queued and due (others are skipped: sent already,
    claimed by another worker, waiting for quiet hours or a retry). Schedules what the rate limit
    holds back and what must be retried; returns what it did."""
    report = SendReport()
    ids = sorted(set(notification_ids))
    for start in range(0, len(ids), CLAIM_BATCH):
        _send_batch(ids[start : start + CLAIM_BATCH], report)
    if report.deferred:
        _schedule(report.deferred)
    return report


def _send_batch(ids: list[int], report: SendReport) -> None:
    """One claim transaction: a fixed handful of statements whatever the number of rows (the claim,
    the settings, what rendering reads (render_reads_for), one outbox insert, one update per outcome)."""
    now = timezone.now()
    outside: list[tuple[Notification, Backend]] = []  # claimed here, handed after the commit
    with transaction.atomic():
        rows = _claim(ids, now)
        if not rows:
            return
        tenant_settings = notification_settings_for(tenant_ids={r.tenant_id for r in rows})
        by_backend: dict[int, tuple[Backend, list[Notification]]] = {}
        for row in rows:
            backend = backend_for(row.channel)
            by_backend.setdefault(id(backend), (backend, []))[1].append(row)
        # Transactional backends of one class send together (the outbox: one insert for every channel).
        together: dict[type, tuple[Backend, list[tuple]]] = {}
        failed: list[Notification] = []
        deferred: list[Notification] = []
        sending: list[tuple[Backend, list[Notification]]] = []
        for backend, group in by_backend.values():
            allowed, held = _rate_limited(backend, group, now, report)
            deferred += held
            sending.append((backend, allowed))
        # What every message of the batch is made from, read at once (not three queries a message).
        reads = render_reads_for([row for _, allowed in sending for row in allowed])
        for backend, allowed in sending:
            if not backend.transactional:
                outside += [(row, backend) for row in allowed]
                continue
            items = together.setdefault(type(backend), (backend, []))[1]
            for row in allowed:
                try:
                    items.append((row, message_render(notification=row, reads=reads), tenant_settings[row.tenant_id]))
                except Exception as error:  # noqa: BLE001 (a content bug fails one row, not the batch)
                    _fail_in_place(row, f"render_{type(error).__name__}", now)
                    failed.append(row)
        for backend, items in together.values():
            if items:
                _record_sent(backend, [row for row, _, _ in items], backend.send_many(items, now), now)
        _record_claimed(outside, now)
        _HANDED.execute(failed)
        _DEFERRED.execute(deferred)
        report.handed += sum(len(items) for _, items in together.values()) + len(outside) + len(failed)
        report.failed += len(failed)
        for row in failed:
            transaction.on_commit(lambda pk=row.pk: notification_fall_back(notification_id=pk))
    for row, backend in outside:
        _hand(row, backend, tenant_settings[row.tenant_id], report, reads=reads)


def notification_send_composed(*, notification_id: int, message) -> bool:
    """Send one row whose message its caller composed and holds in memory only (a verification
    code: no template may carry it, and the row must not store it). The same claim as every row
    (exactly once: handed_at set while the row is locked; a transactional backend sends in that
    transaction), but no retry and no rate-limit deferral: those resend later from the row alone,
    which has no message. A row the backend does not take is failed (purpose verification has no
    channel fallback); the agent sends a new code. Whether the backend took it."""
    now = timezone.now()
    with transaction.atomic():
        rows = _claim([notification_id], now)
        if not rows:
            return False
        row = rows[0]
        backend = backend_for(row.channel)
        tenant_settings = notification_settings_for(tenant_ids=[row.tenant_id])[row.tenant_id]
        if backend.transactional:
            _record_sent(backend, [row], backend.send_many([(row, message, tenant_settings)], now), now)
            return True
        _record_claimed([(row, backend)], now)
    report = SendReport()
    _hand(row, backend, tenant_settings, report, message=message)
    if row.pk in report.deferred:  # a temporary failure: the row cannot be sent again without its message
        _record_failed(row, "not_retried")
        return False
    return not report.failed


def _record_sent(backend: Backend, rows: list[Notification], results: list[Sent], now) -> None:
    """Rows a transactional backend sent, recorded in one UPDATE per outcome (the outbox: one)."""
    by_outcome: dict[tuple, list[int]] = defaultdict(list)
    for row, result in zip(rows, results, strict=True):
        by_outcome[(result.state, result.provider_message_id)].append(row.pk)
    for (state, provider_message_id), pks in by_outcome.items():
        Notification.objects.filter(pk__in=pks).update(
            state=state, handed_at=now, sent_at=now, delivered_at=now if state == State.DELIVERED else None,
            attempts=F("attempts") + 1, provider=backend.name, provider_message_id=provider_message_id,
            receipt_expected=backend.confirms_delivery and state == State.SENT, error="", updated_at=now,
        )  # fmt: skip


def _record_claimed(claimed: list[tuple[Notification, Backend]], now) -> None:
    """Rows claimed for a backend called after the commit: handed_at set first (one UPDATE per backend)."""
    by_backend: dict[str, list[int]] = defaultdict(list)
    for row, backend in claimed:
        row.handed_at, row.attempts, row.provider = now, row.attempts + 1, backend.name
        by_backend[backend.name].append(row.pk)
    for name, pks in by_backend.items():
        Notification.objects.filter(pk__in=pks).update(
            handed_at=now, attempts=F("attempts") + 1, provider=name, updated_at=now
        )


# What sending and message_render read of a row, its alert, customer and tenant: a claim of a batch
# is its biggest statement, and every other column loaded costs on every message (a field left out
# here costs a query per message when read: add it here).
CLAIM_FIELDS = (
    "id", "tenant_id", "alert_id", "customer_id", "drill_id", "channel", "purpose", "state", "critical",
    "recipient", "idempotency_key", "attempts", "handed_at", "answer_nonce", "created_at", "event_ref", "reference",
    "bundle",
    "alert__id", "alert__type", "alert__rule", "alert__severity", "alert__reason", "alert__first_seen_at",
    "alert__last_seen_at",
    "customer__id", "customer__external_id", "customer__locale", "customer__email_masked", "customer__phone_masked",
    "tenant__id", "tenant__slug", "tenant__name",
)  # fmt: skip


def _claim(ids: list[int], now) -> list[Notification]:
    """Lock and return the claimable rows among `ids` (PostgreSQL: rows another worker holds are
    skipped, not waited for). On SQLite the transaction already holds the database's write lock."""
    rows = (
        Notification.objects.select_related("tenant", "alert", "customer")
        .only(*CLAIM_FIELDS)
        .filter(_claimable(ids, now))
        .order_by("id")
    )
    if connection.vendor == "postgresql":
        rows = rows.select_for_update(skip_locked=True, of=("self",))
    return list(rows)


def _rate_limited(backend: Backend, rows: list[Notification], now, report: SendReport):
    """The rows the provider's global bucket lets through now, and those held back (rescheduled,
    not dropped)."""
    if backend.rate is None:
        return rows, []
    rate, burst = backend.rate
    by_key: dict[str, list[Notification]] = defaultdict(list)
    for row in rows:
        by_key[backend.rate_key(row)].append(row)
    allowed, held = [], []
    for key, group in by_key.items():
        granted, wait = rate_take(key=key, wanted=len(group), rate=rate, burst=burst)
        allowed += group[:granted]
        for i, row in enumerate(group[granted:]):
            delay = wait + i / rate  # spread over the refill: not all back at the same instant
            row.next_attempt_at, row.updated_at = now + timedelta(seconds=delay), now
            report.deferred[row.pk] = delay
            held.append(row)
    return allowed, held


def _fail_in_place(row: Notification, code: str, now) -> None:
    row.state, row.handed_at, row.error, row.updated_at = State.FAILED, row.handed_at or now, code[:100], now
    row.provider = row.provider or "-"


def _hand(
    row: Notification, backend: Backend, tenant_settings, report: SendReport, message=None,
    reads: RenderReads | None = None,
) -> None:  # fmt: skip
    """Call a non-transactional backend for a claimed row (outside any transaction), then record
    the answer. `message`: one composed by its caller (a verification code), else rendered here
    (from `reads`, what its batch's rendering reads)."""
    try:
        message = message or message_render(notification=row, reads=reads)
        result = backend.send(row, message, tenant_settings)
    except TemporaryFailure as error:
        _record_temporary(row, error.code, error.retry_after, report)
    except PermanentFailure as error:
        _record_failed(row, error.code)
        report.failed += 1
    except Exception as error:  # noqa: BLE001 (unknown: did the provider take it?)
        code = f"error_{type(error).__name__}"
        if backend.idempotent:  # the provider drops a repeat of our key: trying again is safe
            _record_temporary(row, code, None, report)
        else:
            _record_failed(row, f"in_doubt_{type(error).__name__}")
            report.failed += 1
    else:
        _record_answer(row, backend, result)


def _record_answer(row: Notification, backend: Backend, result: Sent) -> None:
    now = timezone.now()
    # Conditional: a status callback may have told delivery before this answer was recorded.
    Notification.objects.filter(pk=row.pk, state=State.QUEUED).update(
        state=result.state, sent_at=now, delivered_at=now if result.state == State.DELIVERED else None,
        provider_message_id=result.provider_message_id, error="",
        receipt_expected=(
            backend.confirms_delivery if result.receipt_expected is None else result.receipt_expected
        ) and result.state == State.SENT, updated_at=now,
    )  # fmt: skip
    Notification.objects.filter(pk=row.pk, sent_at__isnull=True).update(
        sent_at=now, provider_message_id=result.provider_message_id, updated_at=now
    )


def _record_temporary(row: Notification, code: str, retry_after: float | None, report: SendReport) -> None:
    now = timezone.now()
    if row.attempts >= MAX_ATTEMPTS:
        _record_failed(row, code)
        report.failed += 1
        return
    delay = max(retry_after or 0.0, backoff_seconds(row.attempts))
    Notification.objects.filter(pk=row.pk, state=State.QUEUED, handed_at=row.handed_at).update(
        handed_at=None, next_attempt_at=now + timedelta(seconds=delay), error=code[:100], updated_at=now
    )
    report.deferred[row.pk] = delay
    logger.info("notification will be retried", extra={"notification": row.pk, "error": code, "after": delay})


def _record_failed(row: Notification, code: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        changed = Notification.objects.filter(pk=row.pk, state__in=[State.QUEUED, State.SENT]).update(
            state=State.FAILED, error=code[:100], updated_at=now
        )
        if changed:
            logger.warning("notification failed", extra={"notification": row.pk, "error": code})
            transaction.on_commit(lambda: notification_fall_back(notification_id=row.pk))


def _schedule(deferred: dict[int, float]) -> None:
    """Queue the rows held back (rate limit, retry) for when they are due: one task per second of
    delay. Should a publish fail, the relay picks them up."""
    from alerts.notifications.tasks import notification_send_task

    by_second: dict[int, list[int]] = defaultdict(list)
    for pk, delay in deferred.items():
        by_second[int(delay) + 1].append(pk)
    for countdown, ids in by_second.items():
        try:
            notification_send_task.apply_async((ids,), countdown=countdown)
        except Exception as error:  # noqa: BLE001 (the relay queues them again)
            logger.warning("could not schedule notifications", extra={"error": type(error).__name__})


# --- Action notices ---------------------------------------------------------------------------------


@transaction.atomic
def action_notice_plan(
    *, tenant_id: int, customer_id: int, reference, field: str = "", now: datetime | None = None
) -> list[int]:
    """Tell the customer's contacts on file, before an account change the desk asked for takes effect
    (a contact-detail change, issue 11), each with a "Was this you?" link whose "No" puts the change
    on hold (alerts.signals.notice_disowned, with `reference`). `field`: the contact the change is
    about ("email" or "phone", NOTICE_FIELDS), which the message and its answer page name (never its
    value); "" names none. Every channel with an address on file, whatever the opt-outs and quiet
    hours (critical). Once per `reference`: planned again, it returns the rows planned the first
    time. Queued to send once this commits. The ids of the rows."""
    if field not in NOTICE_FIELDS:
        raise ValueError(f"an action notice is about one of {NOTICE_FIELDS}, not {field!r}")
    planned = list(
        Notification.objects.filter(reference=reference, purpose=Purpose.ACTION_NOTICE).values_list("pk", flat=True)
    )
    if planned:
        return planned
    now = now or timezone.now()
    tenant_settings = notification_settings_for(tenant_ids=[tenant_id])[tenant_id]
    contacts = contacts_for([customer_id]).get(customer_id)
    if contacts is None:
        return []
    subject = Alert(tenant_id=tenant_id, customer_id=customer_id)  # about no alert: alert_id stays None
    rows = []
    for channel in channel_order(tenant_settings):
        address = CHANNELS[channel].address(contacts)
        if address is not None:
            row = _row(subject, channel, Purpose.ACTION_NOTICE, address, True, None, now)
            row.reference, row.notice_field = reference, field
            rows.append(row)
    Notification.objects.bulk_create(rows)
    ids = [r.pk for r in rows]
    if ids:
        transaction.on_commit(lambda: notifications_enqueue(ids))
    return ids


# --- Fallback -----------------------------------------------------------------------------------


@transaction.atomic
def notification_fall_back(*, notification_id: int) -> Notification | None:
    """Try the next channel for an alert whose notification failed for good or was not delivered
    in time: the next channel in the tenant's order that this alert has not used, with an address
    on file and, unless the alert is critical, that the customer did not turn off. One fallback
    per row (a unique constraint); none once any of the alert's messages was delivered. Returns the
    new row, queued to send once this commits, or None."""
    row = (
        Notification.objects.select_for_update()
        .filter(pk=notification_id, purpose=Purpose.ALERT, alert__isnull=False)
        .defer("recipient")
        .first()
    )
    if row is None or Notification.objects.filter(fallback_of_id=row.pk).exists():
        return None
    # The same message's rows (a per-event notice: the same event's), not the alert's other notices.
    siblings = Notification.objects.filter(alert_id=row.alert_id, purpose=Purpose.ALERT, event_ref=row.event_ref)
    if siblings.filter(state=State.DELIVERED).exists():
        return None
    used = set(siblings.values_list("channel", flat=True))
    tenant_settings = notification_settings_for(tenant_ids=[row.tenant_id])[row.tenant_id]
    contacts = contacts_for([row.customer_id]).get(row.customer_id)
    if contacts is None:
        return None
    for channel in channel_order(tenant_settings):
        if channel in used or (not row.critical and contacts.channels.get(channel) is False):
            continue
        address = CHANNELS[channel].address(contacts)
        if address is None:
            continue
        alert = Alert(pk=row.alert_id, tenant_id=row.tenant_id, customer_id=row.customer_id)
        now = timezone.now()
        fallback = _row(alert, channel, Purpose.ALERT, address, row.critical, None, now, event_ref=row.event_ref)
        fallback.fallback_of_id, fallback.bundle = row.pk, row.bundle
        fallback.save(force_insert=True)
        logger.info(
            "notification falls back to the next channel",
            extra={"notification": row.pk, "fallback": fallback.pk, "channel": channel},
        )
        transaction.on_commit(lambda pk=fallback.pk: notifications_enqueue([pk]))
        return fallback
    return None


def notifications_fall_back_undelivered(*, now: datetime | None = None) -> int:
    """Fall back for alert notifications not delivered within their tenant's delivery window:
    still queued (past quiet hours) or sent to a provider that tells delivery but has not. Beat runs
    it; each row falls back at most once. Returns how many fell back."""
    now = now or timezone.now()
    shortest = timedelta(minutes=1)
    candidates = list(
        Notification.objects.filter(
            Q(state=State.QUEUED) | Q(state=State.SENT, receipt_expected=True),
            purpose=Purpose.ALERT,
            alert__isnull=False,
            created_at__lte=now - shortest,
            created_at__gte=now - FALLBACK_HORIZON,  # a day late, another channel no longer helps
            fallbacks__isnull=True,
        )
        .order_by("id")
        .values_list("id", "tenant_id", "created_at", "not_before")[:5000]
    )
    windows = {
        tid: timedelta(minutes=s.delivery_window_minutes)
        for tid, s in notification_settings_for(tenant_ids={c[1] for c in candidates}).items()
    }
    done = 0
    for pk, tenant_id, created_at, not_before in candidates:
        if max(created_at, not_before or created_at) + windows[tenant_id] <= now:
            if notification_fall_back(notification_id=pk) is not None:
                done += 1
            else:  # no channel left to try: stop waiting on this receipt
                Notification.objects.filter(pk=pk, state=State.SENT).update(receipt_expected=False)
    return done


# --- Relay and rows in doubt --------------------------------------------------------------------

RELAY_BATCH = 5000


def notifications_relay(*, now: datetime | None = None) -> tuple[int, int]:
    """Queue again the rows whose send task never ran (lost between the commit and the broker, or
    the worker gave up), and settle the rows in doubt (handed to a backend, no answer recorded: the
    worker died mid-send). Beat runs it every minute. Returns (queued again, settled)."""
    now = now or timezone.now()
    due = list(
        Notification.objects.filter(
            state=State.QUEUED, handed_at__isnull=True, created_at__lte=now - settings.NOTIFICATION_RELAY_AFTER
        )
        .filter(_due(now))
        .order_by("id")
        .values_list("id", flat=True)[:RELAY_BATCH]
    )
    if due:
        logger.warning("notification relay: queuing rows whose task was lost", extra={"notifications": len(due)})
        notifications_enqueue(due)
    doubtful = list(
        Notification.objects.filter(state=State.QUEUED, handed_at__lt=now - settings.NOTIFICATION_IN_DOUBT_AFTER)
        .order_by("id")
        .values_list("id", "channel", "handed_at")[:RELAY_BATCH]
    )
    again = []
    for pk, channel, handed_at in doubtful:
        if backend_for(channel).idempotent:
            # The provider drops a repeat of the same key: handing it again cannot send it twice.
            if Notification.objects.filter(pk=pk, state=State.QUEUED, handed_at=handed_at).update(
                handed_at=None, error="in_doubt_retried", updated_at=now
            ):
                again.append(pk)
        else:
            _record_failed(Notification(pk=pk, handed_at=handed_at), "in_doubt")
    if again:
        notifications_enqueue(again)
    if doubtful:
        logger.warning(
            "notifications in doubt settled", extra={"again": len(again), "failed": len(doubtful) - len(again)}
        )
    return len(due), len(doubtful)


# --- Provider status ----------------------------------------------------------------------------


@transaction.atomic
def notification_status_record(
    *, notification_id: int, state: str, provider_message_id: str = "", code: str = ""
) -> bool:
    """A provider told us how a message went (a status callback): delivered, failed or bounced.
    Ignores what would move a row backwards (a late "sent" after "delivered") and a message id
    that is not the row's. A failure tries the next channel. Returns whether the row changed."""
    row = Notification.objects.select_for_update().filter(pk=notification_id).defer("recipient").first()
    if row is None or state not in (State.SENT, State.DELIVERED, State.FAILED, State.BOUNCED):
        return False
    if row.provider_message_id and provider_message_id and row.provider_message_id != provider_message_id:
        return False
    if row.state in (State.DELIVERED, State.FAILED, State.BOUNCED, State.SKIPPED) or row.state == state:
        return False
    now = timezone.now()
    row.state, row.updated_at = state, now
    row.provider_message_id = row.provider_message_id or provider_message_id[:100]
    row.sent_at = row.sent_at or now
    if state == State.DELIVERED:
        row.delivered_at = now
    if state in (State.FAILED, State.BOUNCED):
        row.error = code[:100]
        transaction.on_commit(lambda: notification_fall_back(notification_id=row.pk))
    row.save(update_fields=["state", "updated_at", "provider_message_id", "sent_at", "delivered_at", "error"])
    return True


# --- Settings -----------------------------------------------------------------------------------

SETTINGS_FIELDS = (
    "notify_types", "min_severity", "critical", "channel_order", "answer_link_days", "answer_window_minutes",
    "no_answer_action", "delivery_window_minutes", "previous_contact_days", "quiet_start", "quiet_end",
    "push_webhook_url", "push_receipts", "drill_customer", "drill_every_hours",
)  # fmt: skip


def _critical_clean(selectors) -> list[str]:
    from alerts.models import AlertType, EventType
    from alerts.rules import RULES

    known = {
        "type": set(AlertType.values),
        "rule": set(RULES),
        "event": set(EventType.values),
    }
    if not isinstance(selectors, list):
        raise ValidationError({"critical": "Give a list."})
    for selector in selectors:
        kind, _, name = str(selector).partition(":")
        if name not in known.get(kind, ()):
            raise ValidationError({"critical": f"Not an alert type, rule or event: {str(selector)[:60]}."})
    return list(dict.fromkeys(selectors))


@transaction.atomic
def notification_settings_update(*, tenant, actor=None, **changes) -> NotificationSettings:
    """Change a tenant's notification settings (the row is made with the defaults first); checked
    (full_clean and the selectors), audited. The push webhook secret is set by
    notification_push_secret_rotate, never here."""
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "Not a notification setting."})
    row, _ = NotificationSettings.objects.select_for_update().get_or_create(tenant=tenant)
    before = {name: getattr(row, name) for name in changes}
    if "critical" in changes:
        changes["critical"] = _critical_clean(changes["critical"])
    if "channel_order" in changes and (
        not isinstance(changes["channel_order"], list) or set(changes["channel_order"]) - set(CHANNELS)
    ):
        raise ValidationError({"channel_order": f"Give channels among {', '.join(CHANNELS)}."})
    customer = changes.get("drill_customer")
    if customer is not None and customer.tenant_id != tenant.pk:
        raise ValidationError({"drill_customer": "No such customer of this client."})
    for name, value in changes.items():
        setattr(row, name, value)
    row.full_clean(exclude=["tenant", "push_webhook_secret"])
    row.updated_at = timezone.now()
    row.save()
    diff = audit_diff(before, {name: getattr(row, name) for name in changes})
    if diff:
        audit_record(action=Action.UPDATE, actor=actor, tenant=tenant, target=row, changes=diff)
    return row


@transaction.atomic
def notification_push_secret_rotate(*, tenant, actor=None) -> str:
    """A new secret for the tenant's push webhook (returned once, stored encrypted); audited."""
    row, _ = NotificationSettings.objects.select_for_update().get_or_create(tenant=tenant)
    secret = secrets.token_urlsafe(32)
    row.push_webhook_secret, row.updated_at = secret, timezone.now()
    row.save(update_fields=["push_webhook_secret", "updated_at"])
    audit_record(
        action=Action.UPDATE, actor=actor, tenant=tenant, target=row, changes={"push_webhook_secret": {"changed": True}}
    )
    return secret


# --- Delivery drills ----------------------------------------------------------------------------


@transaction.atomic
def delivery_drill_start(*, tenant, actor=None, customer=None) -> DeliveryDrill:
    """A delivery test: a test message to the tenant's test customer (its drill_customer, or
    `customer`) on every channel on file, sent at once (quiet hours do not apply); the rows keep
    when each was handed over and delivered (alerts.notifications.selectors.delivery_drill_results).
    A staff `actor` needs alerts.add_deliverydrill in the tenant (PermissionDenied); None: beat."""
    if actor is not None and not user_has_tenant_perm(user=actor, tenant=tenant, perm=DRILL_RUN_PERM):
        raise PermissionDenied("Your role may not run delivery tests for this client.")
    tenant_settings = notification_settings_for(tenant_ids=[tenant.pk])[tenant.pk]
    customer = customer or tenant_settings.drill_customer
    if customer is None or customer.tenant_id != tenant.pk:
        raise ValidationError({"customer": "Choose this client's test customer first."})
    now = timezone.now()
    drill = DeliveryDrill.objects.create(tenant=tenant, customer=customer, started_by=actor, started_at=now)
    contacts = contacts_for([customer.pk])[customer.pk]
    rows = []
    for channel in channel_order(tenant_settings):
        address = CHANNELS[channel].address(contacts)
        if address is not None:
            row = _row(
                Alert(tenant_id=tenant.pk, customer_id=customer.pk), channel, Purpose.TEST, address, True, None, now
            )
            row.drill = drill
            rows.append(row)
    Notification.objects.bulk_create(rows)
    audit_record(
        action=Action.CREATE, actor=actor, tenant=tenant, target=drill,
        metadata={"customer": customer.pk, "channels": [r.channel for r in rows]},
    )  # fmt: skip
    ids = [r.pk for r in rows]
    transaction.on_commit(lambda: notifications_enqueue(ids))
    return drill


def delivery_drills_due_run(*, now: datetime | None = None) -> int:
    """Start the scheduled drills that are due: tenants with a test customer and drill_every_hours
    set, whose last drill is older than that. Beat runs it; returns how many it started."""
    from django.db.models import Max

    now = now or timezone.now()
    scheduled = NotificationSettings.objects.filter(
        drill_every_hours__gt=0, drill_customer__isnull=False
    ).select_related("tenant", "drill_customer")
    last = dict(
        DeliveryDrill.objects.filter(tenant_id__in=[s.tenant_id for s in scheduled])
        .values_list("tenant_id")
        .annotate(at=Max("started_at"))
    )
    started = 0
    for row in scheduled:
        if not row.tenant.is_active:
            continue
        if (at := last.get(row.tenant_id)) is None or at <= now - timedelta(hours=row.drill_every_hours):
            delivery_drill_start(tenant=row.tenant, customer=row.drill_customer)
            started += 1
    return started
