"""Detection rules, and their registry.

Adding a rule: a module here with a `Rule` subclass (see `alerts.rules.base.Rule` for what it
declares), one line in `RULES` below, and its tests. Detection (alerts/detection.py) has no case
for any one rule: it runs each enabled rule on the event types it judges (or after the rules it
follows), and loads beforehand what the rules say they need.
"""

from alerts.findings import Finding, Known
from alerts.rules.base import Check, History, Needs, Param, Past, Rule, WindowCountRule
from alerts.rules.location import LocationRule
from alerts.rules.login import NewDeviceRule, agent_family, device_fingerprint
from alerts.rules.password import PasswordRule
from alerts.rules.recovery import CONTACT_FIELDS, RecoveryRule
from alerts.rules.suspicious import (
    BruteForceRule,
    ContactChangeRule,
    CredentialStuffingRule,
    RapidProfileChangeRule,
    TransactionOutlierRule,
)
from alerts.rules.takeover import TAKEOVER_RULES, AccountTakeoverRule
from alerts.rules.third_party import ThirdPartyRule
from alerts.rules.two_factor import MfaChangeRule, MfaFailuresRule, UnrequestedOtpRule

RULES: dict[str, Rule] = {
    rule.key: rule
    for rule in (
        NewDeviceRule(),
        LocationRule(),
        BruteForceRule(),
        CredentialStuffingRule(),
        ContactChangeRule(),
        RapidProfileChangeRule(),
        TransactionOutlierRule(),
        PasswordRule(),
        MfaChangeRule(),
        MfaFailuresRule(),
        UnrequestedOtpRule(),
        RecoveryRule(),
        ThirdPartyRule(),
        AccountTakeoverRule(),
    )
}

__all__ = [
    "CONTACT_FIELDS", "RULES", "TAKEOVER_RULES", "AccountTakeoverRule", "BruteForceRule", "Check", "ContactChangeRule",
    "CredentialStuffingRule", "Finding", "History", "Known", "LocationRule", "MfaChangeRule", "MfaFailuresRule",
    "Needs", "NewDeviceRule", "Param", "Past", "PasswordRule", "RapidProfileChangeRule", "RecoveryRule", "Rule",
    "ThirdPartyRule", "TransactionOutlierRule", "UnrequestedOtpRule", "WindowCountRule", "agent_family",
    "device_fingerprint",
]  # fmt: skip
