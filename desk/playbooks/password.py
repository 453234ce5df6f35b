from alerts.models import AlertType
from desk.playbooks.base import VERIFY_CALLER, Playbook


class PasswordPlaybook(Playbook):
    alert_type = AlertType.PASSWORD
    label = AlertType.PASSWORD.label
    verify = (
        VERIFY_CALLER,
        ("changed_it", "Ask whether they changed or asked to reset their password at the time shown."),
    )  # fmt: skip
    tell = (
        ("reset_official", "If it wasn't them: reset it from the official app or site only, never from a link in "
                           "a message they did not ask for."),
        ("check_mail_rules", "Check that their email has no forwarding rule they did not set up."),
    )  # fmt: skip
    never_ask = ("The new password, to “check” it.",)
    customer_steps = (
        "If you didn't change your password, reset it from the official app or site.",
        "Check your email for forwarding rules you didn't set up.",
        "Turn on two-factor authentication.",
    )
