"""Escalation: several different account warnings on one account within a short time become one
critical alert that links them. A rule like the others: it follows the rules it escalates (it
runs on an event after them, when one of them found something) instead of judging event types."""

from datetime import timedelta

from alerts.models import AlertType, Severity
from alerts.rules.base import Needs, Param, Rule, minutes, window_minutes

# The account-level warnings that add up to a takeover.
TAKEOVER_RULES = frozenset(
    {"new_device", "password_change", "mfa_change", "recovery", "rapid_profile_change", "otp_unrequested"}
)


class AccountTakeoverRule(Rule):
    """8. Several different account rules on one account within the window: one critical alert
    that links them (folded into, as more arrive)."""

    key = "account_takeover"
    alert_type = AlertType.ACCOUNT_TAKEOVER
    severity = Severity.CRITICAL
    follows = TAKEOVER_RULES
    params = {"rules": Param(3, minimum=2, maximum=len(TAKEOVER_RULES)), "window_minutes": window_minutes(60)}

    def needs(self, params):
        return Needs(alerts=(self.follows, timedelta(minutes=params["window_minutes"])))

    def check(self, check):
        event = check.event
        contributing = check.alerts.recent(
            event.customer_id, self.follows, check.since(minutes(check, "window_minutes"))
        )
        rules = sorted({k.rule for k in contributing})
        if len(rules) < check.params["rules"]:
            return []
        names = ", ".join(AlertType(k.type).label.lower() for k in sorted(contributing, key=lambda k: k.first_seen))
        reason = (
            f"Possible account takeover: {len(rules)} different warnings on this account within "
            f"{check.params['window_minutes']} minutes ({names})."
        )
        evidence = check.alerts.evidence_of(contributing, limit=50)
        return [self.finding(check, reason, evidence=evidence, related=contributing)]
