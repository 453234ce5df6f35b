"""Recovery alerts: recovery requested or completed (higher after an email or phone change)."""

from datetime import timedelta

from alerts.models import AlertType, EventType, Severity
from alerts.rules.base import Needs, Param, Rule

CONTACT_FIELDS = {"email", "phone"}


class RecoveryRule(Rule):
    """6. Account recovery requested or completed; higher after a contact-detail change."""

    key = "recovery"
    alert_type = AlertType.RECOVERY
    events = frozenset({EventType.RECOVERY_REQUESTED, EventType.RECOVERY_COMPLETED})
    params = {"after_contact_change_hours": Param(24, maximum=30 * 24, help="hours")}

    def needs(self, params):
        return Needs(
            history=(frozenset({EventType.PROFILE_CHANGED}), timedelta(hours=params["after_contact_change_hours"]))
        )

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
