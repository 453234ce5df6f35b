"""What every detection rule is built on: the parameters it declares, what it needs loaded
(history, recent alerts), the account's past as it sees it, and the `Rule` base class.

A rule looks at one event (with the account's remembered state and recent history) and says
what, if anything, is worth an alert, and why, in one sentence. It never writes: it returns
Findings, and may update the account's state object it is given.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from django.core.exceptions import ValidationError
from django.db.models import Q

from alerts.findings import Finding, Known, before
from alerts.models import AccountEvent, CustomerState, EventType, Severity


@dataclass(frozen=True)
class Param:
    """A setting a rule declares: its default, and the values a tenant may set. Whole numbers
    within bounds, or lists of short strings; anything else is refused when it is set."""

    default: int | list[str]
    minimum: int = 1
    maximum: int = 10_000
    help: str = ""

    def clean(self, name: str, value):
        if isinstance(self.default, list):
            if not isinstance(value, list) or len(value) > 100:
                raise ValidationError({name: "Give a list of up to 100 words."})
            if not all(isinstance(v, str) and 0 < len(v.strip()) <= 100 for v in value):
                raise ValidationError({name: "Each item must be a word or phrase of 1 to 100 characters."})
            return [v.strip() for v in value]
        if type(value) is not int:  # bool is an int, and 2.5 or "5" would fail in the worker
            raise ValidationError({name: "Give a whole number."})
        if not self.minimum <= value <= self.maximum:
            raise ValidationError({name: f"Give a number from {self.minimum} to {self.maximum}."})
        return value


MINUTES_IN_30_DAYS = 30 * 24 * 60


def window_minutes(default: int) -> Param:
    return Param(default, maximum=MINUTES_IN_30_DAYS, help="minutes")


@dataclass(frozen=True)
class Needs:
    """What a rule reads besides its event, loaded for the whole chunk before the rules run."""

    history: tuple[frozenset[str], timedelta] | None = None  # the account's events of these types, this far back
    source_failures: timedelta | None = None  # failed logins from the event's address in its tenant
    alerts: tuple[frozenset[str], timedelta] | None = None  # the account's alerts of these rules, this far back


@dataclass(frozen=True)
class Past:
    """An earlier (or the same) event of an account, as the rules see it."""

    id: int
    customer_id: int
    type: str
    occurred_at: datetime
    ip: str | None
    fields: list  # context.fields of a profile change: what changed (the rest of the context is not loaded)


class History:
    """The recent past of a chunk's accounts, fetched in one query per concern instead of one per
    event and rule: each rule declares the event types it looks back at and how far
    (`Rule.needs`), and detection loads what the chunk's rules need before running them.
    It holds the chunk's own events too (they are stored), so an event sees those before it."""

    def __init__(self, by_customer: dict[int, list[Past]], by_source: dict[tuple[int, str], list[Past]]):
        self.by_customer = by_customer
        self.by_source = by_source

    @classmethod
    def load(
        cls, events, *, customers: set[int], lookbacks: dict[str, timedelta], source_since: timedelta | None
    ) -> "History":
        """The past of these `customers`: for each event type, as far back as `lookbacks` says
        before the chunk's first event; and with `source_since`, failed logins from the chunk's
        failing addresses."""
        by_customer: dict[int, list[Past]] = {}
        by_source: dict[tuple[int, str], list[Past]] = {}
        if not events:
            return cls(by_customer, by_source)
        first = min(e.occurred_at for e in events)
        last = max(e.occurred_at for e in events)
        fields = ("id", "customer_id", "type", "occurred_at", "ip", "context__fields")
        if lookbacks and customers:
            by_window: dict[timedelta, list[str]] = {}
            for event_type, window in lookbacks.items():
                by_window.setdefault(window, []).append(event_type)
            windows = Q()
            for window, types in by_window.items():
                windows |= Q(type__in=types, occurred_at__gte=before(first, window))
            rows = AccountEvent.objects.filter(windows, customer_id__in=customers, occurred_at__lte=last)
            for row in rows.order_by("occurred_at", "id").values_list(*fields):
                by_customer.setdefault(row[1], []).append(Past(*row))
        failures = [e for e in events if e.type == EventType.LOGIN_FAILED and e.ip]
        if source_since is not None and failures:
            rows = AccountEvent.objects.filter(
                tenant_id__in={e.tenant_id for e in failures}, ip__in={e.ip for e in failures},
                type=EventType.LOGIN_FAILED, occurred_at__gte=before(first, source_since), occurred_at__lte=last,
            ).values_list("tenant_id", *fields)  # fmt: skip
            for tenant_id, *row in rows.order_by("occurred_at", "id"):
                by_source.setdefault((tenant_id, row[4]), []).append(Past(*row))
        return cls(by_customer, by_source)

    @staticmethod
    def _window(items: list[Past], types, event, window: timedelta) -> list[Past]:
        # Up to and including `event` in processing order (time, then arrival): an event never
        # sees one that comes after it, even with the same timestamp.
        since, until, last = before(event.occurred_at, window), event.occurred_at, event.pk
        return [
            p for p in items if since <= p.occurred_at and (p.occurred_at, p.id) <= (until, last) and p.type in types
        ]

    def of_account(self, event, types, window: timedelta) -> list[Past]:
        """Events of these types for this account in the window up to (and including) `event`."""
        return self._window(self.by_customer.get(event.customer_id, []), types, event, window)

    def of_source(self, event, window: timedelta) -> list[Past]:
        """Failed logins from `event`'s address in its tenant, in the window up to `event`."""
        items = self.by_source.get((event.tenant_id, event.ip), [])
        return self._window(items, {EventType.LOGIN_FAILED}, event, window)


class RecentAlerts(Protocol):
    """What a rule may ask of the account's alerts (alerts.raising.AlertBook answers)."""

    def recent(self, customer_id: int, rules, since: datetime) -> list[Known]: ...

    def evidence_of(self, knowns: list[Known], limit: int) -> list[int]: ...


@dataclass
class Check:
    event: AccountEvent
    state: CustomerState
    params: dict
    severity: int
    history: History
    alerts: RecentAlerts  # the account's recent alerts, stored or raised earlier in the chunk
    findings: list[Finding] = field(default_factory=list)  # the event's findings so far (for rules that follow)

    def recent(self, types, window: timedelta) -> list[Past]:
        """Events of these types for this account in the window before (and including) this one."""
        return self.history.of_account(self.event, types, window)

    def since(self, window: timedelta) -> datetime:
        return before(self.event.occurred_at, window)


class Rule:
    """A detection rule. Declare:

    - `key` (its name in settings and alerts), `alert_type`, `severity` (the default);
    - `events`: the event types it judges; or `follows`: rule keys whose findings on an event
      make it run after them (escalation), with `check.findings` set;
    - `params`: its settings (`Param`), which a tenant's RuleSetting overrides;
    - `needs(params)`: the history and alerts it reads, loaded once per chunk.
    """

    key = ""
    alert_type = ""
    severity = Severity.MEDIUM
    events: frozenset = frozenset()
    follows: frozenset = frozenset()
    params: dict[str, Param] = {}

    @property
    def defaults(self) -> dict:
        return {name: param.default for name, param in self.params.items()}

    def params_clean(self, values: dict) -> dict:
        """These settings, checked against the declared parameters; ValidationError if one is
        unknown or of the wrong type or range."""
        if not isinstance(values, dict):
            raise ValidationError({"params": "Give the settings as an object."})
        unknown = sorted(set(values) - set(self.params))
        if unknown:
            raise ValidationError({"params": f"Unknown settings for this rule: {', '.join(unknown)}."})
        return {name: self.params[name].clean(name, value) for name, value in values.items()}

    def params_effective(self, stored: dict) -> tuple[dict, list[str]]:
        """The defaults overridden by the stored values that are valid; and the names of those
        ignored (stored before settings were checked)."""
        effective, ignored = self.defaults, []
        for name, value in (stored if isinstance(stored, dict) else {}).items():
            try:
                effective[name] = self.params[name].clean(name, value)
            except (KeyError, ValidationError):
                ignored.append(str(name)[:60])
        return effective, ignored

    def needs(self, params: dict) -> Needs:
        return Needs()

    def check(self, check: Check) -> list[Finding]:
        raise NotImplementedError

    def finding(
        self, check: Check, reason: str, *, severity=None, subject=None, evidence=None, about_customer=True, related=()
    ) -> Finding:
        return Finding(
            rule=self.key,
            type=self.alert_type,
            severity=severity or check.severity,
            reason=reason,
            subject=subject or f"customer:{check.event.customer_id}",
            evidence=evidence or [check.event.pk],
            about_customer=about_customer,
            related=list(related),
        )


def minutes(check: Check, name: str) -> timedelta:
    return timedelta(minutes=check.params[name])


def remember(items: list, value, limit: int = 50) -> None:
    if value in items:
        items.remove(value)
    items.append(value)
    del items[:-limit]


class WindowCountRule(Rule):
    """Raise when this account has at least `threshold` events of the counted type within
    `window_minutes` (the event at hand included)."""

    counted = ""
    what = ""  # "failed logins", for the reason sentence
    params = {"threshold": Param(5, maximum=10_000), "window_minutes": window_minutes(10)}

    def needs(self, params):
        return Needs(history=(frozenset({self.counted}), timedelta(minutes=params["window_minutes"])))

    def check(self, check):
        window = minutes(check, "window_minutes")
        hits = [past.id for past in check.recent({self.counted}, window)]
        if len(hits) < check.params["threshold"]:
            return []
        reason = f"{len(hits)} {self.what} on this account within {check.params['window_minutes']} minutes."
        return [self.finding(check, reason, evidence=hits[-20:])]
