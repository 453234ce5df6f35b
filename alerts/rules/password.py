"""Password alerts: a change (higher right after a new-device login), a reset request."""

from datetime import timedelta

from alerts.models import AlertType, EventType, Severity
from alerts.rules.base import Needs, Rule, minutes, window_minutes
from alerts.rules.login import NewDeviceRule


class PasswordRule(Rule):
    """4. Password changed or reset requested; higher right after a new-device login."""

    key = "password_change"
    alert_type = AlertType.PASSWORD
    events = frozenset({EventType.PASSWORD_CHANGED, EventType.PASSWORD_RESET_REQUESTED})
    params = {"after_new_device_minutes": window_minutes(60)}

    def needs(self, params):
        return Needs(alerts=(frozenset({NewDeviceRule.key}), timedelta(minutes=params["after_new_device_minutes"])))

    def check(self, check):
        event = check.event
        since = check.since(minutes(check, "after_new_device_minutes"))
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
