from alerts.models import AlertType
from desk.playbooks.base import VERIFY_CALLER, Playbook


class RecoveryPlaybook(Playbook):
    alert_type = AlertType.RECOVERY
    label = AlertType.RECOVERY.label
    verify = (
        VERIFY_CALLER,
        ("asked_recovery", "Ask whether they asked to recover the account, and through which channel."),
        ("contacts_unchanged", "Check whether the email or phone changed shortly before: recovery after a "
                               "contact change is a takeover pattern."),
    )  # fmt: skip
    tell = (
        ("links_official", "Recovery links only come from the client's official address; they should not use one "
                           "they did not ask for."),
    )  # fmt: skip
    never_ask = ("The recovery link or code they received.",)
    customer_steps = (
        "If you didn't ask to recover your account, don't use the link or code you received.",
        "Change your password from the official app or site and check your contact details.",
    )
