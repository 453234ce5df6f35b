"""Login alerts: a device never seen on the account (with a note of a new browser or system)."""

import hashlib

from alerts.models import AlertType, EventType
from alerts.rules.base import Rule, remember

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
            remember(state.devices, fingerprint)
        if family:
            remember(state.agent_families, family, limit=20)
        return findings
