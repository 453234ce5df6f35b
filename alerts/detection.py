"""Detection: run the rules over newly stored events and raise or update alerts.

A chunk of events is one transaction: the events are marked processed together with the alerts
they caused, so a worker killed mid-way leaves nothing half-done and a re-run skips what was
finished (each alert once). The accounts' state rows are locked for the chunk, so concurrent
events of one account are judged one after the other, in time order.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from alerts.models import (
    AccountEvent,
    AlertType,
    CustomerState,
    RuleSetting,
    Severity,
)
from alerts.raising import AlertBook, Announcements
from alerts.rules import (
    RULES,
    TAKEOVER_DEFAULTS,
    TAKEOVER_RULES,
    Check,
    CredentialStuffingRule,
    Finding,
    History,
    PasswordRule,
)
from config.bulk import BulkUpdate


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
        book = _book_for(events, configs)
        for event in events:
            tenant_configs = configs[event.tenant_id]
            state = states[event.customer_id]
            findings: list[Finding] = []
            for rule in _rules_for(event, tenant_configs):
                config = tenant_configs[rule.key]
                check = Check(
                    event=event, state=state, params=config.params, severity=config.severity, history=history,
                    alerts=book,
                )  # fmt: skip
                findings += rule.check(check)
            for finding in findings:
                book.raise_(finding, event)
            takeover = tenant_configs["account_takeover"]
            if takeover.enabled and any(f.rule in TAKEOVER_RULES for f in findings):
                _escalate(event, takeover, book)
        announcements = Announcements()
        book.write(now=now, announcements=announcements)
        _states_save(list(states.values()), now)
        AccountEvent.objects.filter(pk__in=[e.pk for e in events]).update(processed_at=now)
        if announcements:
            transaction.on_commit(announcements.send)
        return len(events)


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


def _book_for(events: list[AccountEvent], configs: dict[int, dict[str, RuleConfig]]) -> AlertBook:
    """The chunk's alert book, with the accounts' recent alerts that escalation and the password
    rule read (as far back as the longest of their windows in the chunk's tenants)."""
    window = max(
        timedelta(minutes=max(configs[t]["account_takeover"].params["window_minutes"],
                              configs[t][PasswordRule.key].params["after_new_device_minutes"]))
        for t in {e.tenant_id for e in events}
    )  # fmt: skip
    since = min(e.occurred_at for e in events) - window
    return AlertBook(customer_ids={e.customer_id for e in events}, rules=TAKEOVER_RULES, since=since)


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


_STATE_UPDATE = BulkUpdate(
    CustomerState,
    fields=["devices", "agent_families", "countries", "networks", "last_login", "amounts", "updated_at"],
    key="customer",
)


def _states_save(states: list[CustomerState], now) -> None:
    # One statement, many parameter rows: Django's bulk_update builds a CASE per field per row,
    # which was over half of a chunk's time (see bench/ingest.py).
    for state in states:
        state.updated_at = now
    _STATE_UPDATE.execute(states)


def _escalate(event: AccountEvent, config: RuleConfig, book: AlertBook) -> None:
    """Several different account rules on one account within the window: one critical alert
    that links them (folded into, as more arrive)."""
    since = event.occurred_at - timedelta(minutes=config.params["window_minutes"])
    contributing = book.recent(event.customer_id, TAKEOVER_RULES, since)
    rules = sorted({k.rule for k in contributing})
    if len(rules) < config.params["rules"]:
        return
    names = ", ".join(AlertType(k.type).label.lower() for k in sorted(contributing, key=lambda k: k.first_seen))
    finding = Finding(
        rule="account_takeover",
        type=AlertType.ACCOUNT_TAKEOVER,
        severity=config.severity,
        reason=f"Possible account takeover: {len(rules)} different warnings on this account within "
        f"{config.params['window_minutes']} minutes ({names}).",
        subject=f"customer:{event.customer_id}",
        evidence=book.evidence_of(contributing, limit=50),
    )
    book.raise_(finding, event, related=contributing)
