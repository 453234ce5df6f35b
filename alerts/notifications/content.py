"""What a notification says. A placeholder: the content helper (templates per tenant, alert type,
channel and locale, the phishing-safe template check, the preview, GSM-7 lengths) replaces this
module; the delivery core only calls `message_render(notification=...)` and reads `Message`.

A notification reaches `message_render` loaded with the fields in
alerts.notifications.services.CLAIM_FIELDS (of the row, its alert, customer and tenant): read only
those, or add to that list (anything else costs a query per message).

The defaults here are plain and safe: what happened, what to do, that staff never ask for a code
or password, and the signed answer link (never any other link, never personal data).
"""

from dataclasses import dataclass

from alerts.models import AlertType


@dataclass(frozen=True)
class Message:
    subject: str  # an email's subject; a push's title
    body: str  # an email's text, an SMS, a push's body, or what a voice call says


_WHAT = {
    AlertType.LOGIN: "a sign-in to your account from a new device",
    AlertType.LOCATION: "a sign-in to your account from a new place",
    AlertType.SUSPICIOUS: "unusual activity on your account",
    AlertType.PASSWORD: "a change to your password",
    AlertType.TWO_FACTOR: "a change to your two-step verification",
    AlertType.RECOVERY: "a request to recover your account",
    AlertType.THIRD_PARTY: "a new app connected to your account",
    AlertType.ACCOUNT_TAKEOVER: "several security changes to your account",
}
NEVER_ASK = "We will never ask you for a code or password."


def message_render(*, notification) -> Message:
    """The message of this notification, for its channel (its alert, tenant and customer loaded)."""
    from alerts.notifications.models import Channel, Purpose

    if notification.purpose == Purpose.TEST:
        return Message(
            subject="Test message",
            body=f"This is a test of security messages. No action is needed. {NEVER_ASK}",
        )
    what = _WHAT.get(getattr(notification.alert, "type", None), "a security change on your account")
    if notification.purpose == Purpose.PREVIOUS_CONTACT:
        what += ", sent to this address because it was on the account until recently"
    link = notification.answer_url()
    if notification.channel == Channel.VOICE:
        body = (
            f"This is a security message. We noticed {what}. If this was not you, open the link we sent you "
            f"or call your provider's official support number. {NEVER_ASK}"
        )
    elif notification.channel in (Channel.SMS, Channel.PUSH):
        body = f"We noticed {what}. Was this you? {link} {NEVER_ASK}"
    else:
        body = (
            f"We noticed {what}.\n\n"
            f"Was this you? Tell us here: {link}\n\n"
            "If it was not you: 1. Change your password. 2. Sign out of other devices. "
            "3. Contact support through the official app or website.\n\n"
            f"{NEVER_ASK}"
        )
    return Message(subject="Security alert: was this you?", body=body)
