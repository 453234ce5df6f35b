from alerts.models import AlertType
from desk.playbooks.base import VERIFY_CALLER, Playbook


class LocationPlaybook(Playbook):
    alert_type = AlertType.LOCATION
    label = AlertType.LOCATION.label
    verify = (
        VERIFY_CALLER,
        ("travel_or_vpn", "Ask whether they are travelling or use a VPN or a new network, without naming the place "
                          "first: let them say where they are."),
    )  # fmt: skip
    tell = (
        ("if_not_them", "If it wasn't them: the account will be secured and they should change their password "
                        "from the official app or site."),
        ("we_never_ask", "We never ask for their password or a code by phone, email or text."),
    )  # fmt: skip
    customer_steps = (
        "Check where your account was used on its security page.",
        "If you don't recognise a place, change your password from the official app or site.",
    )
