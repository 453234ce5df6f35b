"""Account actions, and their registry (STYLE: open for extension, like alerts/rules/).

An action kind declares what it is (`key`, `label`), how risky (`high_risk`: strong verification
and a supervisor's approval, two people), which group it belongs to for the cooling-off rule
(`group`: a "contact" change and a "credential" reset of one customer within the tenant's window
need a supervisor's approval with a reason), and the parameters it takes (`params_clean`). The
engine (desk.action_services) has no case for any one kind. Adding one: a class here, a registry
line, its tests.

No kind takes an address: a contact change asks the client's systems to let the customer set a new
contact themselves; an address read out by a caller is never passed on.
"""

from django.core.exceptions import ValidationError

CONTACT = "contact"
CREDENTIAL = "credential"
# What a contact change changes, in words (staff pages).
CONTACT_FIELD_WORDS = {"email": "the email address", "phone": "the phone number"}


class ActionKind:
    key = ""
    label = ""
    high_risk = False
    group = ""  # CONTACT, CREDENTIAL or "" (the cooling-off rule ignores it)
    # The customer's contacts on file are told before it is sent, and it waits the tenant's hold
    # period (ActionSettings.notice_hold_minutes); their "No" puts it on hold (issue 11).
    notice_first = False
    # A customer's "No, it wasn't me" may ask for it (ActionSettings.customer_no_actions).
    customer_may_ask = False

    def params_clean(self, params: dict) -> dict:
        """The parameters the client receives (validated); none by default."""
        if params:
            raise ValidationError({"params": f"{self.label} takes no parameters."})
        return {}

    def notice_field(self, params: dict) -> str:
        """For a kind that tells the customer first: the contact the notice says is changing
        ("email" or "phone"; alerts.notifications.services.action_notice_plan), "" for none."""
        return ""

    def describe(self, params: dict) -> str:
        """The label with what its parameters say, for staff (the case page): never a customer's value."""
        return self.label


class LockAction(ActionKind):
    key, label, customer_may_ask = "lock", "Lock the account", True


class ResetPasswordAction(ActionKind):
    key, label, group, customer_may_ask = "reset_password", "Force a password reset", CREDENTIAL, True


class RevokeSessionsAction(ActionKind):
    key, label, customer_may_ask = "revoke_sessions", "Sign out every session", True


class RevokeAppAction(ActionKind):
    key, label = "revoke_app", "Revoke a third-party app"

    def params_clean(self, params):
        app = params.get("app") if isinstance(params, dict) else None
        if not isinstance(app, str) or not app.strip() or len(app) > 100 or set(params) - {"app"}:
            raise ValidationError({"params": 'Name the app to revoke: {"app": "<the client\'s app id>"}.'})
        return {"app": app.strip()}

    def describe(self, params):
        app = params.get("app") if isinstance(params, dict) else None
        return f"{self.label} ({app})" if isinstance(app, str) and app else self.label


class ResetMfaAction(ActionKind):
    key, label, group, high_risk = "reset_mfa", "Reset multi-factor authentication", CREDENTIAL, True


class RecoverAction(ActionKind):
    key, label, group, high_risk = "recover", "Start account recovery", CREDENTIAL, True


class ChangeContactAction(ActionKind):
    """Let the customer set a new email or phone in the client's systems (binding a new
    authenticator, NIST SP 800-63B-4): high risk."""

    key, label, group, high_risk = "change_contact", "Allow a contact-detail change", CONTACT, True
    notice_first = True

    def params_clean(self, params):
        field = params.get("field") if isinstance(params, dict) else None
        if field not in ("email", "phone") or set(params) - {"field"}:
            raise ValidationError({"params": 'Say which contact may change: {"field": "email" or "phone"}.'})
        return {"field": field}

    def notice_field(self, params):
        field = params.get("field") if isinstance(params, dict) else None
        return field if field in CONTACT_FIELD_WORDS else ""

    def describe(self, params):
        field = self.notice_field(params)
        return f"{self.label}: {CONTACT_FIELD_WORDS[field]}" if field else self.label


ACTIONS: dict[str, ActionKind] = {
    kind.key: kind
    for kind in (
        LockAction(),
        ResetPasswordAction(),
        RevokeSessionsAction(),
        RevokeAppAction(),
        ResetMfaAction(),
        RecoverAction(),
        ChangeContactAction(),
    )
}
