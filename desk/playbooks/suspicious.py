from alerts.models import AlertType
from desk.playbooks.base import VERIFY_CALLER, Playbook


class SuspiciousPlaybook(Playbook):
    alert_type = AlertType.SUSPICIOUS
    label = AlertType.SUSPICIOUS.label
    verify = (
        VERIFY_CALLER,
        ("recent_activity", "Go through the activity on the alert with them (failed sign-ins, changed contact "
                            "details, an unusual payment) and note what they do not recognise."),
    )  # fmt: skip
    tell = (
        ("no_prompts", "Do not approve a sign-in prompt or share a code you did not ask for, whoever asks."),
        ("contact_changes", "A change of email or phone they did not make is put on hold until they confirm it "
                            "through the contacts on file."),
    )  # fmt: skip
    customer_steps = (
        "Don't approve sign-in prompts you didn't start, and never share a code you receive.",
        "Check your email and phone number on your account; tell us if either changed without you.",
        "Check recent payments and report any you don't recognise.",
    )
