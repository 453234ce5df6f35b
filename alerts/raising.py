"""Raising alerts for a chunk of events.

While the chunk's events are judged one by one, findings fold in memory into one entry per alert
(rule and subject); when the chunk ends, `AlertBook.write` stores them in a handful of statements
whatever their number: lock the active alerts of those keys, insert the new ones, update the
others, link evidence, record the audit trail, and announce after commit. Written one by one,
each alert cost five round trips and a push, and a burst of alerts (an attack) outran the worker.

The book also answers what rules ask of an account's recent alerts (escalation, the password
rule), counting both those stored before the chunk and those raised in it.

Findings are fitted to their columns as they enter the book: a reason quoting client text (an
app's name, its scopes) is cut with an ellipsis, a long subject's key keeps a digest, so no rule
can make a chunk fail on a value too long.
"""

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db import IntegrityError, transaction

from accounts.models import Tenant, User
from alerts.findings import Finding, Known, cut, cut_key
from alerts.models import ACTIVE_STATUSES, Alert, AlertEvidence, AlertStatus
from alerts.notifications.planning import PlanItem, notifications_plan
from alerts.sla import Policies, sla_apply, sla_policies_for
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record_many
from config import push
from config.bulk import BulkUpdate

logger = logging.getLogger(__name__)

_REASON_LENGTH = Alert._meta.get_field("reason").max_length
_KEY_LENGTH = Alert._meta.get_field("dedupe_key").max_length


@dataclass
class Entry:
    """One alert's findings in this chunk."""

    tenant: Tenant
    key: str
    finding: Finding  # the latest: its reason is the alert's
    customer_id: int | None
    first_seen: datetime
    last_seen: datetime
    severity: int
    event_id: int  # the latest event
    count: int = 0
    evidence: dict[int, None] = field(default_factory=dict)
    related: list[Known] = field(default_factory=list)
    alert: Alert | None = None
    previous_severity: int | None = None  # a stored alert's severity before this chunk raised it
    event_types: set[str] = field(default_factory=set)  # of the events that found it in this chunk


class AlertBook:
    def __init__(self, *, customer_ids: set[int], rules: frozenset[str], since: datetime | None):
        """Load the alerts of these accounts, of these rules, seen since `since` (None: none)."""
        self.entries: dict[tuple[int, str], Entry] = {}
        self.known: dict[int, list[Known]] = {}
        self._policies: Policies | None = None
        if since is None or not customer_ids:
            return
        stored = (
            Alert.objects.filter(customer_id__in=customer_ids, rule__in=rules, last_seen_at__gte=since)
            .order_by()  # not the model's -last_seen_at: that would walk the queue index
            .values_list("id", "customer_id", "rule", "type", "first_seen_at", "last_seen_at", "dedupe_key", "status")
        )
        for pk, customer_id, rule, type_, first, last, key, status in stored:
            known = Known(rule, type_, first, last, key, alert_id=pk, active=status in ACTIVE_STATUSES)
            self.known.setdefault(customer_id, []).append(known)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def raise_(self, finding: Finding, event) -> Entry:
        """Note a finding about `event`: a new entry, or a fold into this chunk's entry of the
        same rule and subject."""
        finding = replace(finding, reason=cut(finding.reason, _REASON_LENGTH))
        key = cut_key(f"{finding.rule}:{finding.subject}", _KEY_LENGTH)
        entry = self.entries.get((event.tenant_id, key))
        if entry is None:
            entry = self.entries[(event.tenant_id, key)] = Entry(
                tenant=event.tenant,
                key=key,
                finding=finding,
                customer_id=event.customer_id if finding.about_customer else None,
                first_seen=event.occurred_at,
                last_seen=event.occurred_at,
                severity=finding.severity,
                event_id=event.pk,
            )
        entry.count += 1
        entry.event_types.add(event.type)
        entry.finding, entry.event_id = finding, event.pk
        entry.severity = max(entry.severity, finding.severity)
        entry.last_seen = max(entry.last_seen, event.occurred_at)
        entry.evidence.update(dict.fromkeys(finding.evidence))
        entry.related += [k for k in finding.related if k not in entry.related]
        if finding.about_customer:
            self._remember(event.customer_id, finding, event.occurred_at, key)
        return entry

    def _remember(self, customer_id: int, finding: Finding, at: datetime, key: str) -> None:
        known = self.known.setdefault(customer_id, [])
        same = next((k for k in known if k.key == key and k.active), None)
        if same is None:
            known.append(Known(finding.rule, finding.type, at, at, key))
        else:
            same.last_seen = max(same.last_seen, at)

    def recent(self, customer_id: int, rules, since: datetime) -> list[Known]:
        """The account's alerts of these rules last seen since `since`."""
        return [k for k in self.known.get(customer_id, []) if k.rule in rules and k.last_seen >= since]

    def evidence_of(self, knowns: list[Known], limit: int) -> list[int]:
        """The newest `limit` events linked to these alerts, stored or raised in this chunk."""
        ids = {event_id for k in knowns for e in self.entries.values() if e.key == k.key for event_id in e.evidence}
        stored = [k.alert_id for k in knowns if k.alert_id is not None]
        if stored:
            ids.update(
                AlertEvidence.objects.filter(alert_id__in=stored)
                .order_by("-event_id")
                .values_list("event_id", flat=True)[:limit]
            )
        return sorted(ids, reverse=True)[:limit]

    def write(self, *, now, announcements: "Announcements") -> None:
        """Store the chunk's alerts; call it inside the chunk's transaction."""
        if not self.entries:
            return
        # The active alerts of these keys, locked in id order (two workers folding into the same
        # source alert take their locks in the same order).
        keys = {key for _, key in self.entries}
        stored = (
            Alert.objects.select_for_update()
            .filter(tenant_id__in={t for t, _ in self.entries}, dedupe_key__in=keys, status__in=ACTIVE_STATUSES)
            .order_by("id")
        )
        for alert in stored:
            if (entry := self.entries.get((alert.tenant_id, alert.dedupe_key))) is not None:
                entry.alert = alert
        new = [e for e in self.entries.values() if e.alert is None]
        created = self._create([e for e in new if e.customer_id is not None], now)
        for entry in [e for e in new if e.customer_id is None]:
            created |= self._create_racing(entry, now)
        folds = [e for e in self.entries.values() if id(e) not in created]
        records = [self._record(e, Action.CREATE, audit_diff({}, self._shown(e))) for e in new if id(e) in created]
        records += self._fold(folds, now)
        AlertEvidence.objects.bulk_create(
            [AlertEvidence(alert_id=e.alert.pk, event_id=ev) for e in self.entries.values() for ev in e.evidence],
            ignore_conflicts=True,
        )
        self._relate()
        audit_record_many(records)
        # The customers' notifications, in this transaction (a transactional outbox), sent after commit.
        notifications_plan(
            [PlanItem(e.alert, id(e) in created, e.event_types, e.event_id) for e in self.entries.values()], now=now
        )
        holders = self._holders([e.alert.assignee_id for e in folds if e.alert.assignee_id is not None])
        for entry in self.entries.values():
            alert = entry.alert
            payload = {"id": alert.pk, "type": alert.type, "severity": alert.severity, "status": alert.status,
                       "assignee": holders.get(alert.assignee_id), "count": alert.count}  # fmt: skip
            if entry.previous_severity is not None:  # it may have moved to another queue
                payload["previous_severity"] = entry.previous_severity
            announcements.add(alert.tenant_id, "alert.created" if id(entry) in created else "alert.updated", payload)

    @staticmethod
    def _holders(user_ids: list[int]) -> dict[int, str]:
        """Usernames of the staff holding folded alerts (the desk shows who holds each): one query,
        and none when no folded alert is held."""
        if not user_ids:
            return {}
        return dict(User.objects.filter(pk__in=set(user_ids)).values_list("pk", "username"))

    def _sla_policies(self) -> Policies:
        """The SLA policies of the chunk's tenants: one query per chunk, and only if an alert is
        raised or its severity rises."""
        if self._policies is None:
            self._policies = sla_policies_for(tenant_ids={tenant_id for tenant_id, _ in self.entries})
        return self._policies

    def _new_alert(self, entry: Entry, now) -> Alert:
        alert = Alert(
            tenant=entry.tenant,
            customer_id=entry.customer_id,
            type=entry.finding.type,
            rule=entry.finding.rule,
            severity=entry.severity,
            reason=entry.finding.reason,
            dedupe_key=entry.key,
            count=entry.count,
            first_seen_at=entry.first_seen,
            last_seen_at=entry.last_seen,
            created_at=now,
            updated_at=now,
        )
        sla_apply(alert, self._sla_policies(), raised_at=now)
        return alert

    def _create(self, entries: list[Entry], now) -> set[int]:
        # An account's alerts cannot race: its state row is locked for the chunk.
        alerts = Alert.objects.bulk_create([self._new_alert(e, now) for e in entries])
        for entry, alert in zip(entries, alerts, strict=True):
            entry.alert = alert
        return {id(e) for e in entries}

    def _create_racing(self, entry: Entry, now) -> set[int]:
        """An alert about a source (credential stuffing), which workers on other accounts may
        raise at the same moment: the loser folds into the winner's."""
        try:
            with transaction.atomic():
                entry.alert = self._new_alert(entry, now)
                entry.alert.save(force_insert=True)
            return {id(entry)}
        except IntegrityError:
            entry.alert = Alert.objects.select_for_update().get(
                tenant_id=entry.tenant.pk, dedupe_key=entry.key, status__in=ACTIVE_STATUSES
            )
            return set()

    _UPDATE = BulkUpdate(
        Alert,
        fields=["count", "severity", "reason", "last_seen_at", "updated_at",
                "first_response_due_at", "resolution_due_at", "sla_due_at"],
    )  # fmt: skip

    def _fold(self, entries: list[Entry], now) -> list[dict]:
        records = []
        for entry in entries:
            alert = entry.alert
            before = {"count": alert.count, "severity": alert.severity}
            alert.count += entry.count
            if entry.severity > alert.severity:  # a tighter SLA, counted from when it was raised
                entry.previous_severity = entry.previous_severity or alert.severity
                alert.severity = entry.severity
                sla_apply(alert, self._sla_policies(), raised_at=alert.created_at)
            alert.reason = entry.finding.reason
            alert.last_seen_at = max(alert.last_seen_at, entry.last_seen)
            alert.updated_at = now
            after = {"count": alert.count, "severity": alert.severity}
            records.append(self._record(entry, Action.UPDATE, audit_diff(before, after)))
        self._UPDATE.execute([entry.alert for entry in entries])
        return records

    def _relate(self) -> None:
        by_key = {(e.tenant.pk, e.key): e.alert.pk for e in self.entries.values()}
        links = []
        for entry in self.entries.values():
            for known in entry.related:
                target = known.alert_id or by_key.get((entry.tenant.pk, known.key))
                if target is not None and target != entry.alert.pk:
                    links.append(Alert.related.through(from_alert_id=entry.alert.pk, to_alert_id=target))
        if links:
            Alert.related.through.objects.bulk_create(links, ignore_conflicts=True)

    @staticmethod
    def _shown(entry: Entry) -> dict:
        return {"type": entry.alert.type, "severity": entry.alert.severity, "status": AlertStatus.OPEN,
                "count": entry.alert.count}  # fmt: skip

    @staticmethod
    def _record(entry: Entry, action: str, changes: dict) -> dict:
        return {
            "action": action,
            "tenant": entry.tenant,
            "target": entry.alert,
            "changes": changes,
            "metadata": {"rule": entry.finding.rule, "event": entry.event_id, "occurrences": entry.count},
        }


class Announcements:
    """A chunk's alert pushes, sent together once it commits; an alert raised then folded within
    the chunk is announced once, as created, with its latest count."""

    def __init__(self):
        self.latest: dict[int, tuple[int, str, dict]] = {}

    def __bool__(self) -> bool:
        return bool(self.latest)

    def add(self, tenant_id: int, name: str, payload: dict) -> None:
        if (previous := self.latest.get(payload["id"])) is not None and previous[1] == "alert.created":
            name = "alert.created"
        self.latest[payload["id"]] = (tenant_id, name, payload)

    def send(self) -> None:
        alerts_announce(list(self.latest.values()))


def alerts_announce(messages: list[tuple[int, str, dict]]) -> None:
    """Tell the desk these alerts changed (tenant id, event, payload with id, type, severity, status,
    assignee, and previous_severity when it rose), once the caller's transaction commits: config.push
    buffers them and the desk coalesces them per queue. Ids and states only; what cannot be sent is
    logged by config.push, and pages catch up on their next refetch."""
    push.tenant_events(messages)
