"""Third-party access alerts: an app authorized (higher for broad scopes)."""

import re

from alerts.models import AlertType, EventType, Severity
from alerts.rules.base import Param, Rule


class ThirdPartyRule(Rule):
    """7. A third-party app was authorized; higher for broad scopes."""

    key = "third_party"
    alert_type = AlertType.THIRD_PARTY
    events = frozenset({EventType.THIRD_PARTY_AUTHORIZED})
    params = {
        "broad_scopes": Param(
            ["*", "admin", "all", "full_access", "write", "offline_access", "payments", "mail", "contacts"]
        )
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
