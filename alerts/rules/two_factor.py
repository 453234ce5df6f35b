"""Two-factor alerts: MFA turned off or a factor added, repeated challenge failures, a one-time
code nobody asked for."""

from datetime import timedelta

from alerts.models import AlertType, EventType, Severity
from alerts.rules.base import Needs, Param, Rule, WindowCountRule, minutes, window_minutes


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
    params = {"threshold": Param(3, maximum=10_000), "window_minutes": window_minutes(10)}
    counted, what = EventType.MFA_CHALLENGE_FAILED, "failed two-factor challenges"


class UnrequestedOtpRule(Rule):
    """5c. A one-time code was sent that no sign-in, reset or recovery of this account asked for."""

    key = "otp_unrequested"
    alert_type = AlertType.TWO_FACTOR
    severity = Severity.HIGH
    events = frozenset({EventType.MFA_OTP_SENT})
    params = {"window_minutes": window_minutes(10)}
    CAUSES = (EventType.LOGIN_SUCCEEDED, EventType.LOGIN_FAILED, EventType.PASSWORD_RESET_REQUESTED,
              EventType.RECOVERY_REQUESTED, EventType.MFA_CHALLENGE_FAILED)  # fmt: skip

    def needs(self, params):
        return Needs(history=(frozenset(self.CAUSES), timedelta(minutes=params["window_minutes"])))

    def check(self, check):
        if check.recent(self.CAUSES, minutes(check, "window_minutes")):
            return []
        channel = check.event.context.get("channel")
        via = f" by {channel}" if channel else ""
        return [
            self.finding(check, f"A one-time code was sent{via} that no sign-in or reset of this account asked for.")
        ]
