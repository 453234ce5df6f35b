"""Suspicious activity: brute force, credential stuffing (once per source), a change of the
account's email or phone (each one), rapid email and phone change, a transaction far above the
account's history."""

import statistics
from datetime import timedelta
from decimal import Decimal

from alerts.models import AlertType, EventType, Severity
from alerts.rules.base import Needs, Param, Rule, WindowCountRule, minutes, window_minutes
from alerts.rules.recovery import CONTACT_FIELDS


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
    params = {"accounts": Param(10, minimum=2), "window_minutes": window_minutes(10)}

    def needs(self, params):
        return Needs(source_failures=timedelta(minutes=params["window_minutes"]))

    def check(self, check):
        event = check.event
        if not event.ip:
            return []
        failures = check.history.of_source(event, minutes(check, "window_minutes"))
        accounts = len({past.customer_id for past in failures})
        if accounts < check.params["accounts"]:
            return []
        reason = (
            f"Failed logins on {accounts} different accounts from one address within "
            f"{check.params['window_minutes']} minutes (credential stuffing)."
        )
        evidence = [past.id for past in reversed(failures[-20:])]
        return [self.finding(check, reason, subject=f"source:{event.ip}", evidence=evidence, about_customer=False)]


class ContactChangeRule(Rule):
    """3c'. The account's email or phone changed: every change, because the address it replaced must
    be told (NIST SP 800-63B-4: an attacker who changed the email first would otherwise receive the
    warning himself). Folds into the account's active alert like any rule, but each change is told
    on its own (alerts.notifications.planning.PER_EVENT_RULES)."""

    key = "contact_change"
    alert_type = AlertType.SUSPICIOUS
    events = frozenset({EventType.PROFILE_CHANGED})

    def check(self, check):
        fields = check.event.context.get("fields") if isinstance(check.event.context, dict) else None
        named = {f for f in fields if isinstance(f, str)} if isinstance(fields, list) else set()
        changed = [f for f in ("email", "phone") if f in CONTACT_FIELDS & named]
        if not changed:
            return []
        what = " and ".join({"email": "email address", "phone": "phone number"}[f] for f in changed)
        return [self.finding(check, f"The account's {what} changed.")]


class RapidProfileChangeRule(Rule):
    """3c. Email and phone both changed within a short window."""

    key = "rapid_profile_change"
    alert_type = AlertType.SUSPICIOUS
    events = frozenset({EventType.PROFILE_CHANGED})
    params = {"window_minutes": window_minutes(60)}

    def needs(self, params):
        return Needs(history=(frozenset({EventType.PROFILE_CHANGED}), timedelta(minutes=params["window_minutes"])))

    def check(self, check):
        changes = check.recent({EventType.PROFILE_CHANGED}, minutes(check, "window_minutes"))
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
    params = {
        "multiplier": Param(5, maximum=1000),
        "min_history": Param(3, maximum=200),
        "history": Param(20, maximum=200),
    }

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
