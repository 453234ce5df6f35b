from alerts.models import AlertType
from desk.playbooks.base import VERIFY_CALLER, Playbook


class LoginPlaybook(Playbook):
    alert_type = AlertType.LOGIN
    label = AlertType.LOGIN.label
    verify = (
        VERIFY_CALLER,
        ("device_recognised", "Ask whether they signed in from a new device or browser at the time shown "
                              "(name the device and the place; never read out the address)."),
    )  # fmt: skip
    tell = (
        ("if_not_them", "If it wasn't them: the other sessions will be signed out, and they should change their "
                        "password from the official app or site."),
        ("we_never_ask", "We never ask for their password or a code by phone, email or text."),
    )  # fmt: skip
    customer_steps = (
        "Check the recent sign-ins on your account's security page.",
        "If one wasn't you, change your password from the official app or site, and sign out other devices.",
        "Turn on two-factor authentication if it is not on.",
    )
