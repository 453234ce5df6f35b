from alerts.models import AlertType
from desk.playbooks.base import VERIFY_CALLER, Playbook


class TwoFactorPlaybook(Playbook):
    alert_type = AlertType.TWO_FACTOR
    label = AlertType.TWO_FACTOR.label
    verify = (
        VERIFY_CALLER,
        ("factor_change", "Ask whether they turned two-factor off or added a device or number at the time shown."),
    )  # fmt: skip
    tell = (
        ("no_reset_on_word", "A two-factor reset is never done on the caller's word alone: it needs a verified "
                             "customer and a supervisor's approval."),
        ("we_never_ask", "We never ask for a code from their authenticator app or a text message."),
    )  # fmt: skip
    never_ask = ("A code from their authenticator app, to “confirm” the device.",)
    customer_steps = (
        "Check the two-factor devices and numbers on your account's security page.",
        "Remove any you don't recognise, then change your password.",
    )
