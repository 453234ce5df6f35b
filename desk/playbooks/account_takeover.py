from alerts.models import AlertType
from desk.playbooks.base import VERIFY_CALLER, Playbook


class AccountTakeoverPlaybook(Playbook):
    alert_type = AlertType.ACCOUNT_TAKEOVER
    label = AlertType.ACCOUNT_TAKEOVER.label
    verify = (
        VERIFY_CALLER,
        ("linked_warnings", "Go through each linked alert with them and note which ones they did not do."),
        ("caller_pressure", "Watch for pressure: urgency, a new number to call back, a request to change contact "
                            "details first. Report a security concern if you see it."),
    )  # fmt: skip
    tell = (
        ("securing", "The account is being secured: sessions signed out and a password reset forced, through the "
                     "client's systems."),
        ("escalation", "The client's security team is told when the case is escalated to them."),
    )  # fmt: skip
    never_ask = ("To change the contact details first “so the code reaches you”: codes only go to contacts on file.",)
    customer_steps = (
        "Your account is being secured. Reset your password from the official app or site when asked.",
        "Check your email, phone number and two-factor devices on your account.",
        "Never share a code you receive, even with someone who says they are from us.",
    )
