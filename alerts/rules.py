"""Detection rules: small units that look at one event (with the account's remembered state and
recent history) and say what, if anything, is worth an alert, and why, in one sentence.

Each rule has defaults (enabled, severity, thresholds) that a tenant's RuleSetting overrides. A
rule never writes: it returns Findings, and may update the account's state object it is given.
"""

import hashlib
import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Q

from alerts.models import AccountEvent, AlertType, CustomerState, EventType, Severity

if TYPE_CHECKING:
    from alerts.raising import AlertBook


@dataclass
class Finding:
    rule: str
    type: str
    severity: int
    reason: str
    subject: str  # what the alert is about, for de-duplication: the account, or a source address
    evidence: list[int] = field(default_factory=list)
    about_customer: bool = True


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
    (`Rule.looks_back`), and detection loads what the chunk's rules need before running them.
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
                windows |= Q(type__in=types, occurred_at__gte=first - window)
            rows = AccountEvent.objects.filter(windows, customer_id__in=customers, occurred_at__lte=last)
            for row in rows.order_by("occurred_at", "id").values_list(*fields):
                by_customer.setdefault(row[1], []).append(Past(*row))
        failures = [e for e in events if e.type == EventType.LOGIN_FAILED and e.ip]
        if source_since is not None and failures:
            rows = AccountEvent.objects.filter(
                tenant_id__in={e.tenant_id for e in failures}, ip__in={e.ip for e in failures},
                type=EventType.LOGIN_FAILED, occurred_at__gte=first - source_since, occurred_at__lte=last,
            ).values_list("tenant_id", *fields)  # fmt: skip
            for tenant_id, *row in rows.order_by("occurred_at", "id"):
                by_source.setdefault((tenant_id, row[4]), []).append(Past(*row))
        return cls(by_customer, by_source)

    @staticmethod
    def _window(items: list[Past], types, event, window: timedelta) -> list[Past]:
        # Up to and including `event` in processing order (time, then arrival): an event never
        # sees one that comes after it, even with the same timestamp.
        since, until, last = event.occurred_at - window, event.occurred_at, event.pk
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


@dataclass
class Check:
    event: AccountEvent
    state: CustomerState
    params: dict
    severity: int
    history: History
    alerts: "AlertBook"  # the account's recent alerts, stored or raised earlier in the chunk

    def recent(self, types, window: timedelta) -> list[Past]:
        """Events of these types for this account in the window before (and including) this one."""
        return self.history.of_account(self.event, types, window)


class Rule:
    key = ""
    alert_type = ""
    severity = Severity.MEDIUM
    events: frozenset = frozenset()
    defaults: dict = {}

    def looks_back(self, params: dict) -> tuple[frozenset, timedelta] | None:
        """The event types of the account's past this rule reads, and how far back; None: none."""
        return None

    def check(self, check: Check) -> list[Finding]:
        raise NotImplementedError

    def finding(self, check: Check, reason: str, *, severity=None, subject=None, evidence=None, about_customer=True):
        return Finding(
            rule=self.key,
            type=self.alert_type,
            severity=severity or check.severity,
            reason=reason,
            subject=subject or f"customer:{check.event.customer_id}",
            evidence=evidence or [check.event.pk],
            about_customer=about_customer,
        )


def _minutes(check: Check, name: str) -> timedelta:
    return timedelta(minutes=check.params[name])


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iOS"), ("Mac OS X", "macOS"),
            ("Linux", "Linux"))  # fmt: skip


def agent_family(user_agent: str) -> str:
    browser = next((name for token, name in _BROWSERS if token in user_agent), "Other browser")
    system = next((name for token, name in _SYSTEMS if token in user_agent), "other system")
    return f"{browser} on {system}"


def device_fingerprint(context: dict) -> str | None:
    if context.get("device_id"):
        return f"id:{context['device_id']}"
    if context.get("user_agent"):
        return "ua:" + hashlib.sha256(context["user_agent"].encode()).hexdigest()[:16]
    return None


def _remember(items: list, value, limit: int = 50) -> None:
    if value in items:
        items.remove(value)
    items.append(value)
    del items[:-limit]


class NewDeviceRule(Rule):
    """1. A login from a device never seen on this account; a new browser or OS family."""

    key = "new_device"
    alert_type = AlertType.LOGIN
    events = frozenset({EventType.LOGIN_SUCCEEDED})

    def check(self, check):
        context = check.event.context
        fingerprint = device_fingerprint(context)
        family = agent_family(context["user_agent"]) if context.get("user_agent") else None
        state = check.state
        findings = []
        first_login = not state.devices and not state.agent_families
        if fingerprint and not first_login and fingerprint not in state.devices:
            what = f" ({family})" if family else ""
            new_family = family and family not in state.agent_families
            reason = f"Login from a device never seen on this account{what}" + (
                ", and a browser or system it has not used before." if new_family else "."
            )
            findings.append(self.finding(check, reason))
        if fingerprint:
            _remember(state.devices, fingerprint)
        if family:
            _remember(state.agent_families, family, limit=20)
        return findings


class LocationRule(Rule):
    """2. A login from a new country or network; impossible travel between two logins."""

    key = "new_location"
    alert_type = AlertType.LOCATION
    events = frozenset({EventType.LOGIN_SUCCEEDED})
    defaults = {
        "max_speed_kmh": 900,
        "min_distance_km": 100,  # closer pairs are within geolocation error
        "anonymizer_networks": [
            "M247",
            "DataCamp",
            "Mullvad",
            "NordVPN",
            "Proton",
            "Private Internet Access",
            "ExpressVPN",
            "Surfshark",
            "Tor",
        ],  # fmt: skip
    }

    def check(self, check):
        from alerts.geo import distance_km, locate

        event, state = check.event, check.state
        place = locate(event.ip, event.context.get("geo"))
        anonymizers = [name.lower() for name in check.params["anonymizer_networks"]]
        hidden = bool(place.network) and any(name in place.network.lower() for name in anonymizers)
        findings = []
        first = not state.countries and not state.networks and not state.last_login
        if not first:
            new_country = place.country and place.country not in state.countries
            new_network = place.network and place.network not in state.networks and not hidden
            if new_country:
                via = f" through {place.network}" if place.network else ""
                reason = f"Login from a country never seen on this account ({place.country}{via})."
                findings.append(self.finding(check, reason))
            elif new_network:
                reason = f"Login from a network never seen on this account ({place.network})."
                findings.append(self.finding(check, reason, severity=Severity.LOW))
            last = state.last_login
            if last.get("lat") is not None and place.lat is not None and not hidden and not last.get("hidden"):
                km = distance_km((last["lat"], last["lon"]), (place.lat, place.lon))
                hours = max((event.occurred_at - datetime.fromisoformat(last["at"])).total_seconds() / 3600, 1 / 60)
                if km >= check.params["min_distance_km"] and km / hours > check.params["max_speed_kmh"]:
                    minutes = round(hours * 60)
                    reason = (
                        f"Impossible travel: {km:,.0f} km from the previous login ({last.get('country') or '?'} to "
                        f"{place.country or '?'}) in {minutes:,} minute{'' if minutes == 1 else 's'}."
                    )
                    findings.append(
                        self.finding(check, reason, severity=Severity.HIGH, evidence=[last["event"], event.pk])
                    )
        if place.country:
            _remember(state.countries, place.country, limit=30)
        if place.network and not hidden:
            _remember(state.networks, place.network, limit=30)
        if place.lat is not None:
            state.last_login = {
                "at": event.occurred_at.isoformat(), "lat": place.lat, "lon": place.lon, "country": place.country,
                "event": event.pk, "hidden": hidden,
            }  # fmt: skip
        return findings


class WindowCountRule(Rule):
    """Raise when this account has at least `threshold` events of the counted type within
    `window_minutes` (the event at hand included)."""

    counted = ""
    what = ""  # "failed logins", for the reason sentence
    defaults = {"threshold": 5, "window_minutes": 10}

    def looks_back(self, params):
        return frozenset({self.counted}), timedelta(minutes=params["window_minutes"])

    def check(self, check):
        window = _minutes(check, "window_minutes")
        hits = [past.id for past in check.recent({self.counted}, window)]
        if len(hits) < check.params["threshold"]:
            return []
        reason = f"{len(hits)} {self.what} on this account within {check.params['window_minutes']} minutes."
        return [self.finding(check, reason, evidence=hits[-20:])]


class BruteForceRule(WindowCountRule):
    """3a. Many failed logins for one account in a short window."""

    key = "brute_force"
    alert_type = AlertType.SUSPICIOUS
    severity = Severity.HIGH
    events = frozenset({EventType.LOGIN_FAILED})
    counted, what = EventType.LOGIN_FAILED, "failed logins"


class CredentialStuffingRule(Rule):
    """3b. Failed logins on many accounts from one address: raised once per source."""

    key = "credential_stuffing"
    alert_type = AlertType.SUSPICIOUS
    severity = Severity.HIGH
    events = frozenset({EventType.LOGIN_FAILED})
    defaults = {"accounts": 10, "window_minutes": 10}

    def check(self, check):
        event = check.event
        if not event.ip:
            return []
        failures = check.history.of_source(event, _minutes(check, "window_minutes"))
        accounts = len({past.customer_id for past in failures})
        if accounts < check.params["accounts"]:
            return []
        reason = (
            f"Failed logins on {accounts} different accounts from one address within "
            f"{check.params['window_minutes']} minutes (credential stuffing)."
        )
        evidence = [past.id for past in reversed(failures[-20:])]
        return [self.finding(check, reason, subject=f"source:{event.ip}", evidence=evidence, about_customer=False)]


class RapidProfileChangeRule(Rule):
    """3c. Email and phone both changed within a short window."""

    key = "rapid_profile_change"
    alert_type = AlertType.SUSPICIOUS
    events = frozenset({EventType.PROFILE_CHANGED})
    defaults = {"window_minutes": 60}

    def looks_back(self, params):
        return frozenset({EventType.PROFILE_CHANGED}), timedelta(minutes=params["window_minutes"])

    def check(self, check):
        changes = check.recent({EventType.PROFILE_CHANGED}, _minutes(check, "window_minutes"))
        fields = {f for change in changes for f in change.fields or []}
        if not {"email", "phone"} <= fields:
            return []
        reason = f"Email and phone number both changed within {check.params['window_minutes']} minutes."
        return [self.finding(check, reason, evidence=[c.id for c in changes])]


class TransactionOutlierRule(Rule):
    """3d. A transaction far above the account's own history (same currency)."""

    key = "transaction_outlier"
    alert_type = AlertType.SUSPICIOUS
    severity = Severity.HIGH
    events = frozenset({EventType.TRANSACTION_CREATED})
    defaults = {"multiplier": 5, "min_history": 3, "history": 20}

    def check(self, check):
        context = check.event.context
        if "amount" not in context:
            return []
        amount, currency = Decimal(context["amount"]), context.get("currency", "")
        # The account's latest amounts per currency live in its state (locked for the chunk), so
        # judging a transaction reads nothing.
        remembered = check.state.amounts.setdefault(currency, [])
        amounts = [Decimal(a) for a in remembered[-check.params["history"] :]]
        remembered.append(context["amount"])
        del remembered[: -max(check.params["history"], self.defaults["history"])]
        if len(amounts) < check.params["min_history"]:
            return []
        typical = statistics.median(amounts)
        if typical <= 0 or amount <= typical * check.params["multiplier"]:
            return []
        reason = (
            f"A transaction of {amount} {currency} is {amount / typical:.0f} times this account's "
            f"typical {typical} {currency}."
        ).replace("  ", " ")
        return [self.finding(check, reason)]


class PasswordRule(Rule):
    """4. Password changed or reset requested; higher right after a new-device login."""

    key = "password_change"
    alert_type = AlertType.PASSWORD
    events = frozenset({EventType.PASSWORD_CHANGED, EventType.PASSWORD_RESET_REQUESTED})
    defaults = {"after_new_device_minutes": 60}

    def check(self, check):
        event = check.event
        since = event.occurred_at - _minutes(check, "after_new_device_minutes")
        after_new_device = bool(check.alerts.recent(event.customer_id, {NewDeviceRule.key}, since))
        if event.type == EventType.PASSWORD_CHANGED:
            how = event.context.get("initiated_by")
            reason = "The account's password was changed" + (f" (by {how})" if how else "")
        else:
            reason = "A password reset was requested for this account"
        if after_new_device:
            return [self.finding(check, reason + ", right after a login from a new device.", severity=Severity.HIGH)]
        severity = check.severity if event.type == EventType.PASSWORD_CHANGED else Severity.LOW
        return [self.finding(check, reason + ".", severity=severity)]


class MfaChangeRule(Rule):
    """5a. Two-factor authentication disabled, or a factor added."""

    key = "mfa_change"
    alert_type = AlertType.TWO_FACTOR
    severity = Severity.HIGH
    events = frozenset({EventType.MFA_DISABLED, EventType.MFA_ENROLLED})

    def check(self, check):
        factor = check.event.context.get("factor")
        named = f" ({factor})" if factor else ""
        if check.event.type == EventType.MFA_DISABLED:
            return [self.finding(check, f"Two-factor authentication{named} was turned off on this account.")]
        return [
            self.finding(check, f"A new two-factor method{named} was added to this account.", severity=Severity.MEDIUM)
        ]


class MfaFailuresRule(WindowCountRule):
    """5b. Repeated failed two-factor challenges."""

    key = "mfa_failures"
    alert_type = AlertType.TWO_FACTOR
    severity = Severity.HIGH
    events = frozenset({EventType.MFA_CHALLENGE_FAILED})
    defaults = {"threshold": 3, "window_minutes": 10}
    counted, what = EventType.MFA_CHALLENGE_FAILED, "failed two-factor challenges"


class UnrequestedOtpRule(Rule):
    """5c. A one-time code was sent that no sign-in, reset or recovery of this account asked for."""

    key = "otp_unrequested"
    alert_type = AlertType.TWO_FACTOR
    severity = Severity.HIGH
    events = frozenset({EventType.MFA_OTP_SENT})
    defaults = {"window_minutes": 10}
    CAUSES = (EventType.LOGIN_SUCCEEDED, EventType.LOGIN_FAILED, EventType.PASSWORD_RESET_REQUESTED,
              EventType.RECOVERY_REQUESTED, EventType.MFA_CHALLENGE_FAILED)  # fmt: skip

    def looks_back(self, params):
        return frozenset(self.CAUSES), timedelta(minutes=params["window_minutes"])

    def check(self, check):
        if check.recent(self.CAUSES, _minutes(check, "window_minutes")):
            return []
        channel = check.event.context.get("channel")
        via = f" by {channel}" if channel else ""
        return [
            self.finding(check, f"A one-time code was sent{via} that no sign-in or reset of this account asked for.")
        ]


CONTACT_FIELDS = {"email", "phone"}


class RecoveryRule(Rule):
    """6. Account recovery requested or completed; higher after a contact-detail change."""

    key = "recovery"
    alert_type = AlertType.RECOVERY
    events = frozenset({EventType.RECOVERY_REQUESTED, EventType.RECOVERY_COMPLETED})
    defaults = {"after_contact_change_hours": 24}

    def looks_back(self, params):
        return frozenset({EventType.PROFILE_CHANGED}), timedelta(hours=params["after_contact_change_hours"])

    def check(self, check):
        window = timedelta(hours=check.params["after_contact_change_hours"])
        contact_changes = [
            e.id for e in check.recent({EventType.PROFILE_CHANGED}, window) if CONTACT_FIELDS & set(e.fields or [])
        ]
        done = check.event.type == EventType.RECOVERY_COMPLETED
        channel = check.event.context.get("channel")
        via = f" by {channel}" if channel else ""
        reason = f"Account recovery was {'completed' if done else 'requested'}{via}"
        if contact_changes:
            return [
                self.finding(
                    check,
                    reason + ", after the account's email or phone changed.",
                    severity=Severity.HIGH,
                    evidence=[*contact_changes, check.event.pk],
                )  # fmt: skip
            ]
        return [self.finding(check, reason + ".")]


class ThirdPartyRule(Rule):
    """7. A third-party app was authorized; higher for broad scopes."""

    key = "third_party"
    alert_type = AlertType.THIRD_PARTY
    events = frozenset({EventType.THIRD_PARTY_AUTHORIZED})
    defaults = {
        "broad_scopes": ["*", "admin", "all", "full_access", "write", "offline_access", "payments", "mail", "contacts"]
    }

    def check(self, check):
        context = check.event.context
        app = context.get("app_name") or context.get("app_id") or "an app"
        broad_words = [w.lower() for w in check.params["broad_scopes"]]
        broad = [
            s
            for s in context.get("scopes", [])
            if any(w == "*" and s == "*" or w != "*" and w in re.split(r"[^a-z*]+", s.lower()) for w in broad_words)
        ]
        if broad:
            reason = f"{app} was given access to this account with broad permissions ({', '.join(broad[:5])})."
            return [self.finding(check, reason, severity=Severity.HIGH)]
        return [self.finding(check, f"{app} was given access to this account.")]


RULES: dict[str, Rule] = {
    rule.key: rule
    for rule in (
        NewDeviceRule(), LocationRule(), BruteForceRule(), CredentialStuffingRule(), RapidProfileChangeRule(),
        TransactionOutlierRule(), PasswordRule(), MfaChangeRule(), MfaFailuresRule(), UnrequestedOtpRule(),
        RecoveryRule(), ThirdPartyRule(),
    )
}  # fmt: skip

# Escalation: several different account-level rules on one account in a short time.
TAKEOVER_RULES = frozenset(
    {"new_device", "password_change", "mfa_change", "recovery", "rapid_profile_change", "otp_unrequested"}
)
TAKEOVER_DEFAULTS = {"rules": 3, "window_minutes": 60}
