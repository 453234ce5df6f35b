from alerts.models import AlertType
from desk.playbooks.base import VERIFY_CALLER, Playbook


class ThirdPartyPlaybook(Playbook):
    alert_type = AlertType.THIRD_PARTY
    label = AlertType.THIRD_PARTY.label
    verify = (
        VERIFY_CALLER,
        ("authorized_app", "Ask whether they gave the app named on the alert access to their account."),
    )  # fmt: skip
    tell = (
        ("revoke_app", "If they don't know the app: its access can be revoked, and they should change their "
                       "password."),
    )  # fmt: skip
    customer_steps = (
        "Review the apps connected to your account and remove any you don't use.",
        "If an app you don't know had access, change your password.",
    )
