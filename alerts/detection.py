"""Detection: run the rules over newly stored events and raise or update alerts.

A chunk of events is one transaction: the events are marked processed together with the alerts
they caused, so a worker killed mid-way leaves nothing half-done and a re-run skips what was
finished (each alert once). The accounts' state rows are locked for the chunk, so concurrent
events of one account are judged one after the other, in time order.

The engine has no case for any rule: it asks each rule what it needs loaded (`Rule.needs`), runs
the enabled rules on the event types they judge, then the rules that follow those that found
something (escalation). A chunk that fails on an event of its own (not a lost connection, which
the task retries) is split until the event is isolated: the others are processed, and that one
is set aside as a dead letter (alerts/dead_letters.py), so one bad event never stalls detection.

Under load the worker's task (alerts.tasks) claims work (`events_process_claiming`): each chunk
takes, beside the task's own events, other committed unprocessed events, oldest first, up to a
chunk in all, skipping those another worker has locked (`FOR NO KEY UPDATE SKIP LOCKED`), and the
task goes on while its chunks come full. A one-event chunk cost about 20 times the CPU per event of
a 200-event one (bench/detection_cpu.py), and ingestion stores one event per request at peak: so
one task does the work of the many requests that came while it waited (and ingestion queues no
other while it waits: alerts.services.detection_enqueue). Idle, a task finds nothing more and runs
its own events alone, at once. Claiming changes none of the above: a claimed event is locked and
marked processed in the chunk's transaction like the task's own, and a chunk that fails is isolated
as a list, the claimed included.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from alerts.dead_letters import dead_letter_failed_again, event_set_aside, is_transient
from alerts.findings import Finding, before
from alerts.models import AccountEvent, CustomerState, EventDeadLetter, RuleSetting
from alerts.raising import AlertBook, Announcements
from alerts.rules import RULES, Check, History, Rule
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record
from config.bulk import BulkUpdate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleConfig:
    enabled: bool
    severity: int
    params: dict


def rule_configs_for(tenant_id: int) -> dict[str, RuleConfig]:
    """Every rule's effective settings for a tenant: its defaults, overridden by RuleSetting.
    Settings are checked when they are set (alerts.services.rule_setting_set); a stored value
    that does not fit its parameter (saved before that check) is ignored, not run."""
    overrides = {s.rule: s for s in RuleSetting.objects.filter(tenant_id=tenant_id)}
    configs = {}
    for key, rule in RULES.items():
        setting = overrides.get(key)
        params, ignored = rule.params_effective(setting.params if setting else {})
        if ignored:
            logger.warning(
                "ignored invalid rule settings", extra={"tenant_id": tenant_id, "rule": key, "params": ignored}
            )
        configs[key] = RuleConfig(
            enabled=setting.enabled if setting else True,
            severity=(setting.severity if setting and setting.severity else rule.severity),
            params=params,
        )
    return configs


def events_process(*, event_ids: list[int], now: datetime | None = None) -> int:
    """Process these events (skipping those already processed), one transaction per chunk.
    Returns how many it processed (those set aside as dead letters not counted). Transient
    errors (see alerts.dead_letters.is_transient) propagate, for the task to retry. `now`: when
    the processing counts as done (alerts raised, SLA clocks started); the present by default,
    an earlier time only to replay history (demo data)."""
    configs: dict[int, dict[str, RuleConfig]] = {}
    done = 0
    for start in range(0, len(event_ids), CHUNK):
        done += _process_isolating(event_ids[start : start + CHUNK], configs, now)
    return done


# Chunks a task claims at most beyond its own events before it hands the rest of a backlog to the
# next task (alerts.tasks): about ten seconds of work, so that no task holds a worker for long.
CLAIM_ROUNDS = 50


def events_process_claiming(*, event_ids: list[int]) -> tuple[int, bool]:
    """The worker's way: process these events as `events_process` does, each chunk also taking
    other unprocessed events, oldest first, up to CHUNK in all; then go on claiming chunks while
    they come full, up to CLAIM_ROUNDS. Events another worker holds are skipped, not waited for
    (its chunk processes them, or its task retries them, or the relay re-queues them). Returns how
    many it processed and whether more may be waiting (the last chunk came full)."""
    configs: dict[int, dict[str, RuleConfig]] = {}
    done, full = 0, False
    chunks = [event_ids[start : start + CHUNK] for start in range(0, len(event_ids), CHUNK)] or [[]]
    for chunk in chunks:
        processed, full = _process_claiming(chunk, configs)
        done += processed
    rounds = 0
    while full and rounds < CLAIM_ROUNDS:
        processed, full = _process_claiming([], configs)
        done, rounds = done + processed, rounds + 1
    return done, full


def _process_claiming(event_ids: list[int], configs) -> tuple[int, bool]:
    """A chunk of these events and the unprocessed ones it claims; if it fails on an event's own
    account, the events it had taken are isolated as any chunk's are (without claiming more).
    Returns how many it processed and whether it took a full chunk."""
    taken: list[int] = []
    try:
        return _process_chunk(event_ids, configs, claim=True, taken=taken), len(taken) >= CHUNK
    except Exception as error:
        if is_transient(error) or not taken:
            raise
        return _process_isolating(taken, configs), len(taken) >= CHUNK


def _process_isolating(event_ids: list[int], configs, now: datetime | None = None) -> int:
    """A chunk; if it fails on an event's own account, its halves, down to the one event that
    fails, which is set aside. The halves keep the chunk's order (time order, as ingested)."""
    try:
        return _process_chunk(event_ids, configs, now)
    except Exception as error:
        if is_transient(error):
            raise
        if len(event_ids) == 1:
            event_set_aside(event_id=event_ids[0], error=error)
            return 0
        middle = len(event_ids) // 2
        first, second = event_ids[:middle], event_ids[middle:]
        return _process_isolating(first, configs, now) + _process_isolating(second, configs, now)


def dead_letters_reprocess(*, letter_ids: list[int] | None = None, actor=None) -> tuple[int, int]:
    """Run detection again over dead-lettered events (these, or every unresolved one), oldest
    event first, each in its own transaction: a success marks the letter resolved (audited), a
    failure counts an attempt. Returns (resolved, failed). Call it once the cause is fixed; the
    event is judged against its account's state as it is now."""
    letters = EventDeadLetter.objects.filter(resolved_at__isnull=True)
    if letter_ids is not None:
        letters = letters.filter(pk__in=letter_ids)
    pending = list(letters.order_by("event__occurred_at", "event_id").values_list("pk", "event_id"))
    configs: dict[int, dict[str, RuleConfig]] = {}
    resolved = failed = 0
    for letter_id, event_id in pending:
        try:
            with transaction.atomic():
                letter = (
                    EventDeadLetter.objects.select_for_update(of=("self",))
                    .select_related("tenant")
                    .filter(pk=letter_id, resolved_at__isnull=True)
                    .first()
                )
                if letter is None:
                    continue
                AccountEvent.objects.filter(pk=event_id).update(processed_at=None)
                _process_chunk([event_id], configs)
                letter.resolved_at = timezone.now()
                letter.save(update_fields=["resolved_at"])
                audit_record(
                    action=Action.UPDATE,
                    actor=actor,
                    tenant=letter.tenant,
                    target=letter,
                    changes=audit_diff({"resolved_at": None}, {"resolved_at": letter.resolved_at}),
                    metadata={"event": event_id, "attempts": letter.attempts + 1},
                )
            resolved += 1
        except Exception as error:
            if is_transient(error):
                raise
            dead_letter_failed_again(letter_id=letter_id, error=error)
            failed += 1
    logger.info("dead letters reprocessed", extra={"resolved": resolved, "failed": failed})
    return resolved, failed


# Events per transaction: a chunk locks its events and its accounts' state rows in two ordered
# queries and writes them back in bulk, instead of a dozen round trips per event.
CHUNK = 200


def _process_chunk(
    event_ids: list[int], configs, now: datetime | None = None, *, claim: bool = False, taken: list[int] | None = None
) -> int:
    """One transaction over these events (and, with `claim`, the unprocessed ones it claims; the
    ids it locked, in the order judged, are added to `taken`)."""
    with transaction.atomic():
        events = _events_claim(event_ids) if claim else _events_lock(event_ids)
        if not events:
            return 0
        if taken is not None:
            taken += [e.pk for e in events]
        tenants = Tenant.objects.in_bulk({e.tenant_id for e in events})
        for event in events:
            event.tenant = tenants[event.tenant_id]  # one instance per tenant, for the audit records
        now = now or timezone.now()
        states = _states_lock(sorted({e.customer_id for e in events}), now)
        for tenant_id in {e.tenant_id for e in events} - set(configs):
            configs[tenant_id] = rule_configs_for(tenant_id)
        history, book = _load_needs(events, configs)
        for event in events:
            _judge(event, states[event.customer_id], configs[event.tenant_id], history, book)
        announcements = Announcements()
        book.write(now=now, announcements=announcements)
        _states_save(list(states.values()), now)
        AccountEvent.objects.filter(pk__in=[e.pk for e in events]).update(processed_at=now)
        if announcements:
            transaction.on_commit(announcements.send)
        return len(events)


def _events_lock(event_ids: list[int]) -> list[AccountEvent]:
    # FOR NO KEY UPDATE: it keeps a second worker off these events, yet lets one whose alert
    # links them as evidence (a foreign key check takes KEY SHARE) go on, which FOR UPDATE
    # would block into a deadlock (see tests/test_concurrency.py).
    return list(
        AccountEvent.objects.select_for_update(no_key=True)
        .filter(pk__in=event_ids, processed_at__isnull=True)
        .order_by("occurred_at", "id")
    )


def _events_claim(event_ids: list[int]) -> list[AccountEvent]:
    """These events and other unprocessed ones, oldest received first, up to CHUNK in all, in
    judging order; those another worker has locked are skipped, not waited for (with it waiting,
    a worker handed the tasks of events its peer had claimed would queue behind the peer's chunk)."""
    unprocessed = AccountEvent.objects.select_for_update(no_key=True, skip_locked=True)
    unprocessed = unprocessed.filter(processed_at__isnull=True)
    own = list(unprocessed.filter(pk__in=event_ids))
    if room := CHUNK - len(own):
        # The partial index of unprocessed events serves this: it holds only the backlog.
        own += unprocessed.exclude(pk__in=[e.pk for e in own]).order_by("received_at", "id")[:room]
    return sorted(own, key=lambda e: (e.occurred_at, e.pk))


def _judge(event: AccountEvent, state: CustomerState, tenant_configs, history: History, book: AlertBook) -> None:
    """Run the enabled rules that judge the event's type, then those that follow a rule that
    found something (with the event's findings at hand); note every finding in the book."""

    def check_for(rule: Rule, findings: list[Finding]) -> Check:
        config = tenant_configs[rule.key]
        return Check(
            event=event, state=state, params=config.params, severity=config.severity, history=history, alerts=book,
            findings=findings,
        )  # fmt: skip

    findings = [f for rule in _rules_for(event, tenant_configs) for f in rule.check(check_for(rule, []))]
    for finding in findings:
        book.raise_(finding, event)
    found = {f.rule for f in findings}
    for rule in _followers(tenant_configs):
        if rule.follows & found:
            for finding in rule.check(check_for(rule, findings)):
                book.raise_(finding, event)


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


def _rules_for(event: AccountEvent, tenant_configs: dict[str, RuleConfig]) -> list[Rule]:
    """The enabled rules that judge this event's type."""
    return [rule for key, rule in RULES.items() if event.type in rule.events and tenant_configs[key].enabled]


def _followers(tenant_configs: dict[str, RuleConfig]) -> list[Rule]:
    """The enabled rules that run after others (escalation)."""
    return [rule for key, rule in RULES.items() if rule.follows and tenant_configs[key].enabled]


def _load_needs(events: list[AccountEvent], configs: dict[int, dict[str, RuleConfig]]) -> tuple[History, AlertBook]:
    """What the chunk's rules will read, as they declare it (`Rule.needs`): the accounts' past
    events and failed logins by source (History), and their recent alerts (the AlertBook), in
    one or two queries each."""
    customers: set[int] = set()
    lookbacks: dict[str, timedelta] = {}
    source_since: timedelta | None = None
    alert_rules: set[str] = set()
    alert_window: timedelta | None = None
    for event in events:
        tenant_configs = configs[event.tenant_id]
        for rule in [*_rules_for(event, tenant_configs), *_followers(tenant_configs)]:
            needs = rule.needs(tenant_configs[rule.key].params)
            if needs.history is not None:
                customers.add(event.customer_id)
                types, window = needs.history
                for event_type in types:
                    lookbacks[event_type] = max(lookbacks.get(event_type, window), window)
            if needs.source_failures is not None:
                source_since = max(source_since or needs.source_failures, needs.source_failures)
            if needs.alerts is not None:
                alert_rules |= needs.alerts[0]
                alert_window = max(alert_window or needs.alerts[1], needs.alerts[1])
    history = History.load(events, customers=customers, lookbacks=lookbacks, source_since=source_since)
    since = None if alert_window is None else before(min(e.occurred_at for e in events), alert_window)
    book = AlertBook(customer_ids={e.customer_id for e in events}, rules=frozenset(alert_rules), since=since)
    return history, book


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
