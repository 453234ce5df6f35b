"""Detection: run the rules over newly stored events and raise or update alerts.

A chunk of events is one transaction: the events are marked processed together with the alerts
they caused, so a worker killed mid-way leaves nothing half-done and a re-run skips what was
finished (each alert once). The accounts' state rows are locked for the chunk, so concurrent
events of one account are judged one after the other, in time order.
"""

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Tenant
from alerts.models import (
    ACTIVE_STATUSES,
    AccountEvent,
    Alert,
    AlertEvidence,
    AlertType,
    CustomerState,
    RuleSetting,
    Severity,
)
from alerts.rules import RULES, TAKEOVER_DEFAULTS, TAKEOVER_RULES, Check, CredentialStuffingRule, Finding, History
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleConfig:
    enabled: bool
    severity: int
    params: dict


def rule_configs_for(tenant_id: int) -> dict[str, RuleConfig]:
    """Every rule's effective settings for a tenant: its defaults, overridden by RuleSetting."""
    overrides = {s.rule: s for s in RuleSetting.objects.filter(tenant_id=tenant_id)}
    configs = {}
    for key, rule in [*RULES.items(), ("account_takeover", None)]:
        setting = overrides.get(key)
        defaults = TAKEOVER_DEFAULTS if rule is None else rule.defaults
        base_severity = Severity.CRITICAL if rule is None else rule.severity
        configs[key] = RuleConfig(
            enabled=setting.enabled if setting else True,
            severity=(setting.severity if setting and setting.severity else base_severity),
            params={**defaults, **(setting.params if setting else {})},
        )
    return configs


def events_process(*, event_ids: list[int]) -> int:
    """Process these events (skipping those already processed), one transaction per chunk.
    Returns how many it processed."""
    configs: dict[int, dict[str, RuleConfig]] = {}
    done = 0
    for start in range(0, len(event_ids), CHUNK):
        done += _process_chunk(event_ids[start : start + CHUNK], configs)
    return done


# Events per transaction: a chunk locks its events and its accounts' state rows in two ordered
# queries and writes them back in bulk, instead of a dozen round trips per event.
CHUNK = 200


def _process_chunk(event_ids: list[int], configs) -> int:
    with transaction.atomic():
        # FOR NO KEY UPDATE: it keeps a second worker off these events, yet lets one whose alert
        # links them as evidence (a foreign key check takes KEY SHARE) go on, which FOR UPDATE
        # would block into a deadlock (see tests/test_concurrency.py).
        events = list(
            AccountEvent.objects.select_for_update(no_key=True)
            .filter(pk__in=event_ids, processed_at__isnull=True)
            .order_by("occurred_at", "id")
        )
        if not events:
            return 0
        tenants = Tenant.objects.in_bulk({e.tenant_id for e in events})
        for event in events:
            event.tenant = tenants[event.tenant_id]  # one instance per tenant, for the audit records
        now = timezone.now()
        states = _states_lock(sorted({e.customer_id for e in events}), now)
        for tenant_id in {e.tenant_id for e in events} - set(configs):
            configs[tenant_id] = rule_configs_for(tenant_id)
        history = _history_for(events, configs)
        announcements = Announcements()
        for event in events:
            tenant_configs = configs[event.tenant_id]
            state = states[event.customer_id]
            findings: list[Finding] = []
            for rule in _rules_for(event, tenant_configs):
                config = tenant_configs[rule.key]
                findings += rule.check(
                    Check(event=event, state=state, params=config.params, severity=config.severity, history=history)
                )
            raised = [alert_raise(finding=f, event=event, now=now, announcements=announcements) for f in findings]
            takeover = tenant_configs["account_takeover"]
            if takeover.enabled and any(a.rule in TAKEOVER_RULES for a in raised):
                _escalate(event, takeover, now, announcements)
        _states_save(list(states.values()), now)
        AccountEvent.objects.filter(pk__in=[e.pk for e in events]).update(processed_at=now)
        if announcements:
            transaction.on_commit(announcements.send)
        return len(events)


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
        from desk.realtime import tenant_announce_many

        try:
            tenant_announce_many(list(self.latest.values()))
        except Exception:  # the alerts are committed; a missed push is caught up by the queue's next read
            logger.exception("could not announce alerts", extra={"alert_ids": list(self.latest)})


def _states_lock(customer_ids: list[int], now) -> dict[int, CustomerState]:
    """The accounts' state rows, locked for the chunk (made first for accounts seen for the first
    time). Rows are made, then locked, in customer order, holding no state lock while making
    them, so two workers with overlapping chunks cannot deadlock."""
    existing = set(CustomerState.objects.filter(customer_id__in=customer_ids).values_list("customer_id", flat=True))
    if missing := [pk for pk in customer_ids if pk not in existing]:
        CustomerState.objects.bulk_create(
            [CustomerState(customer_id=pk, updated_at=now) for pk in missing], ignore_conflicts=True
        )
    rows = CustomerState.objects.select_for_update().filter(customer_id__in=customer_ids).order_by("customer_id")
    return {s.customer_id: s for s in rows}


def _rules_for(event: AccountEvent, tenant_configs: dict[str, RuleConfig]):
    return [rule for key, rule in RULES.items() if event.type in rule.events and tenant_configs[key].enabled]


def _history_for(events: list[AccountEvent], configs: dict[int, dict[str, RuleConfig]]) -> History:
    """What the chunk's rules will read of their accounts' past, in one or two queries."""
    customers: set[int] = set()
    lookbacks: dict[str, timedelta] = {}
    source_since = None
    for event in events:
        tenant_configs = configs[event.tenant_id]
        for rule in _rules_for(event, tenant_configs):
            params = tenant_configs[rule.key].params
            if isinstance(rule, CredentialStuffingRule):
                window = timedelta(minutes=params["window_minutes"])
                source_since = max(source_since or window, window)
            if (wanted := rule.looks_back(params)) is not None:
                customers.add(event.customer_id)
                for event_type in wanted[0]:
                    lookbacks[event_type] = max(lookbacks.get(event_type, wanted[1]), wanted[1])
    return History.load(events, customers=customers, lookbacks=lookbacks, source_since=source_since)


_STATE_UPDATE = (
    "UPDATE alerts_customerstate SET devices = %s, agent_families = %s, countries = %s, networks = %s, "
    "last_login = %s, amounts = %s, updated_at = %s WHERE customer_id = %s"
)


def _states_save(states: list[CustomerState], now) -> None:
    # One statement, many parameter rows: Django's bulk_update builds a CASE per field per row,
    # which was over half of a chunk's time (see bench/ingest.py).
    rows = [
        (json.dumps(s.devices), json.dumps(s.agent_families), json.dumps(s.countries), json.dumps(s.networks),
         json.dumps(s.last_login), json.dumps(s.amounts), now, s.customer_id)
        for s in states
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.executemany(_STATE_UPDATE, rows)


def _escalate(event: AccountEvent, config: RuleConfig, now, announcements: Announcements) -> None:
    since = event.occurred_at - timedelta(minutes=config.params["window_minutes"])
    # No ORDER BY: the model's default (-last_seen_at) leads the planner to walk the queue index.
    contributing = list(
        Alert.objects.filter(customer_id=event.customer_id, rule__in=TAKEOVER_RULES, last_seen_at__gte=since).order_by()
    )
    rules = sorted({a.rule for a in contributing})
    if len(rules) < config.params["rules"]:
        return
    evidence = list(
        AlertEvidence.objects.filter(alert__in=contributing)
        .order_by("-event_id")
        .values_list("event_id", flat=True)[:50]
    )
    names = ", ".join(AlertType(a.type).label.lower() for a in sorted(contributing, key=lambda a: a.first_seen_at))
    finding = Finding(
        rule="account_takeover",
        type=AlertType.ACCOUNT_TAKEOVER,
        severity=config.severity,
        reason=f"Possible account takeover: {len(rules)} different warnings on this account within "
        f"{config.params['window_minutes']} minutes ({names}).",
        subject=f"customer:{event.customer_id}",
        evidence=evidence,
    )
    alert = alert_raise(finding=finding, event=event, now=now, announcements=announcements)
    alert.related.add(*contributing)


def alert_raise(*, finding: Finding, event: AccountEvent, now, announcements: Announcements) -> Alert:
    """Create the alert a finding calls for, or fold it into the active alert of the same rule and
    subject (count, last seen, highest severity, more evidence). Announced with the chunk."""
    key = f"{finding.rule}:{finding.subject}"
    # No ORDER BY (first() would add the model's -last_seen_at, and the planner would walk the
    # tenant's whole queue): the partial unique index finds the one active alert of this key.
    alert = next(
        iter(
            Alert.objects.select_for_update()
            .filter(tenant_id=event.tenant_id, dedupe_key=key, status__in=ACTIVE_STATUSES)
            .order_by()[:1]
        ),
        None,
    )
    created = False
    if alert is None:
        try:
            # An account's alerts cannot race (its state row is locked for the chunk), so only
            # an alert about a source, raised from many accounts at once, needs the savepoint.
            with transaction.atomic(savepoint=not finding.about_customer):
                alert = Alert.objects.create(
                    tenant_id=event.tenant_id,
                    customer_id=event.customer_id if finding.about_customer else None,
                    type=finding.type,
                    rule=finding.rule,
                    severity=finding.severity,
                    reason=finding.reason,
                    dedupe_key=key,
                    first_seen_at=event.occurred_at,
                    last_seen_at=event.occurred_at,
                    created_at=now,
                    updated_at=now,
                )
                created = True
        except IntegrityError:  # another worker raised it a moment ago (same source): fold into it
            alert = Alert.objects.select_for_update().get(
                tenant_id=event.tenant_id, dedupe_key=key, status__in=ACTIVE_STATUSES
            )
    if not created:
        before = {"count": alert.count, "severity": alert.severity}
        alert.count += 1
        alert.severity = max(alert.severity, finding.severity)
        alert.reason = finding.reason
        alert.last_seen_at = max(alert.last_seen_at, event.occurred_at)
        alert.updated_at = now
        alert.save(update_fields=["count", "severity", "reason", "last_seen_at", "updated_at"])
        changes = audit_diff(before, {"count": alert.count, "severity": alert.severity})
    else:
        changes = audit_diff({}, {"type": alert.type, "severity": alert.severity, "status": alert.status})
    AlertEvidence.objects.bulk_create(
        [AlertEvidence(alert=alert, event_id=event_id) for event_id in dict.fromkeys(finding.evidence)],
        ignore_conflicts=True,
    )
    audit_record(
        action=Action.CREATE if created else Action.UPDATE,
        tenant=event.tenant,
        target=alert,
        changes=changes,
        metadata={"rule": finding.rule, "event": event.pk},
    )
    payload = {"id": alert.pk, "type": alert.type, "severity": alert.severity, "count": alert.count}
    announcements.add(event.tenant_id, "alert.created" if created else "alert.updated", payload)
    return alert


def alert_announce(tenant_id: int, name: str, payload: dict) -> None:
    """Tell the tenant's desk connections. Call it from transaction.on_commit."""
    from desk.realtime import tenant_announce

    try:
        tenant_announce(tenant_id=tenant_id, event=name, payload=payload)
    except Exception:  # the alert is committed; a missed push is caught up by the queue's next read
        logger.exception("could not announce an alert", extra={"alert_id": payload["id"]})
