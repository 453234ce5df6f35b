"""Customer notifications: what is sent to whom, on which channel, and how it went.

A `Notification` row is planned in the transaction that raises (or escalates) its alert: a
transactional outbox, so nothing is lost between the database commit and the broker. Each row is one
message on one channel, with its own state; `handed_at` is the exactly-once marker (see
alerts/notifications/services.py for how a row is claimed, handed and recorded).

Imported by alerts/models.py, so these are models of the `alerts` app.
"""

import secrets
import uuid

from django.conf import settings
from django.core import signing
from django.db import models

from alerts.crypto import EncryptedTextField
from alerts.models import AlertType, Customer, Severity


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    VOICE = "voice", "Voice call"


class Purpose(models.TextChoices):
    ALERT = "alert", "Security alert"  # to the customer's current address on that channel
    PREVIOUS_CONTACT = "previous_contact", "Notice to a previous address"  # NIST SP 800-63B-4
    VERIFICATION = "verification", "Verification code"  # the desk's identity check (cases issue)
    # Told before an account change the desk asked for takes effect (a contact-detail change: issue 11);
    # `reference` names it, and a "No" puts it on hold (alerts.signals.notice_disowned).
    ACTION_NOTICE = "action_notice", "Notice before an account change"
    TEST = "test", "Delivery test"  # a drill or a test alert


class State(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"  # the provider accepted it
    DELIVERED = "delivered", "Delivered"  # the provider (or the outbox) says it arrived
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"  # never sent: no address on file (see `error`)
    BOUNCED = "bounced", "Bounced"  # accepted, then refused by the carrier or mailbox


# The contacts an action notice may say it changes ("": none named).
NOTICE_FIELDS = ("", "email", "phone")

FINAL_STATES = (State.DELIVERED, State.FAILED, State.SKIPPED, State.BOUNCED)
UNDELIVERED_STATES = (State.FAILED, State.BOUNCED)


class NoAnswerAction(models.TextChoices):
    NOTHING = "nothing", "Nothing"
    RAISE_SEVERITY = "raise_severity", "Raise the alert to the highest severity"


def _all_alert_types() -> list[str]:
    return list(AlertType.values)


# What the tenant treats as critical when it has not said otherwise: these go to every channel on
# file whatever the customer opted out of. A selector is "type:<alert type>", "rule:<rule key>" or
# "event:<event type>" (an alert raised or folded by an event of that type), because the issue's
# four cases are not four alert types:
# - account takeover: the alert type `account_takeover` (rule `account_takeover`);
# - MFA disabled: rule `mfa_change` also raises on a factor *added* (medium); only the
#   `mfa.disabled` event is critical;
# - recovery completed: rule `recovery` also raises on a recovery *requested*; only the
#   `recovery.completed` event is critical (every recovery still notifies every address on file);
# - contact details changed: rule `contact_change` (every change of the email or phone) and
#   `rapid_profile_change` (email and phone both changed within the hour).
CRITICAL_DEFAULT = [
    "type:account_takeover",
    "event:mfa.disabled",
    "event:recovery.completed",
    "rule:contact_change",
    "rule:rapid_profile_change",
]
CHANNEL_ORDER_DEFAULT = [Channel.PUSH.value, Channel.SMS.value, Channel.EMAIL.value, Channel.VOICE.value]


def _critical_default() -> list[str]:
    return list(CRITICAL_DEFAULT)


def _channel_order_default() -> list[str]:
    return list(CHANNEL_ORDER_DEFAULT)


class NotificationSettings(models.Model):
    """A tenant's notification settings: what is sent, when and how it escalates. A tenant without
    a row gets these defaults (alerts.notifications.selectors.notification_settings_for); changed
    only through alerts.notifications.services.notification_settings_update (validated, audited).
    How messages name the tenant, where they link and the local time zone are the tenant's
    MessageSettings (one source of truth for the content, the answer page and quiet hours)."""

    tenant = models.OneToOneField(
        "accounts.Tenant", primary_key=True, on_delete=models.CASCADE, related_name="notification_settings"
    )
    notify_types = models.JSONField(default=_all_alert_types, help_text="Alert types customers are told of.")
    min_severity = models.PositiveSmallIntegerField(choices=Severity.choices, default=Severity.LOW)
    critical = models.JSONField(
        default=_critical_default,
        help_text='Selectors of critical alerts ("type:...", "rule:...", "event:..."): every channel on file.',
    )
    channel_order = models.JSONField(default=_channel_order_default, help_text="Fallback order of channels.")
    answer_link_days = models.PositiveSmallIntegerField(default=7, help_text="How long a Was-this-you link works.")
    answer_window_minutes = models.PositiveIntegerField(default=60, help_text="Time the customer has to answer.")
    no_answer_action = models.CharField(
        max_length=20, choices=NoAnswerAction.choices, default=NoAnswerAction.RAISE_SEVERITY
    )
    delivery_window_minutes = models.PositiveIntegerField(
        default=5, help_text="Not delivered within this: the next channel in the order is tried."
    )
    previous_contact_days = models.PositiveSmallIntegerField(
        default=30, help_text="Addresses replaced this recently are told of recoveries and contact changes."
    )
    quiet_start = models.TimeField(null=True, blank=True, help_text="Non-critical messages wait from ...")
    quiet_end = models.TimeField(
        null=True, blank=True, help_text="... until (local time, in the time zone of the tenant's message settings)."
    )
    push_webhook_url = models.URLField(blank=True, help_text="The tenant's endpoint that pushes to its app.")
    push_webhook_secret = EncryptedTextField(blank=True)
    push_receipts = models.BooleanField(
        default=False, help_text="The tenant's app posts a signed receipt when a push is shown (delivered)."
    )
    drill_customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="A test account."
    )
    drill_every_hours = models.PositiveSmallIntegerField(default=0, help_text="Scheduled drills (0: none).")
    updated_at = models.DateTimeField(null=True, blank=True)

    # Not a column: the tenant's time zone, from its MessageSettings (notification_settings_for sets it).
    local_time_zone = "UTC"

    def __str__(self) -> str:
        return f"notification settings of {self.tenant}"


ANSWER_SALT = "alerts.notification.answer"


class Notification(models.Model):
    """One message to a customer on one channel: planned in the transaction of its alert (or drill),
    sent by alerts.notifications.tasks, its state then told by the provider.

    Exactly once: a row is claimed (handed_at set) in the transaction that locks it, before the
    provider is called, and a claimed row is never claimed again until the answer to that attempt
    is recorded. At most one row per alert, channel, purpose and told event (a previous-contact
    notice: per address). Holds the address as it was when planned (encrypted) and its masked form; `error`
    holds a class or provider code, never personal data.
    """

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    alert = models.ForeignKey(
        "alerts.Alert", null=True, blank=True, on_delete=models.PROTECT, related_name="notifications"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="notifications", db_index=False)
    drill = models.ForeignKey(
        "alerts.DeliveryDrill", null=True, blank=True, on_delete=models.PROTECT, related_name="notifications"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.ALERT)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    critical = models.BooleanField(default=False, help_text="Sent whatever the opt-outs and quiet hours.")
    recipient = EncryptedTextField(blank=True)  # the address when planned; push: the account's external id
    recipient_masked = models.CharField(max_length=64, blank=True)
    recipient_digest = models.CharField(max_length=32, blank=True)  # keyed: tells previous addresses apart
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    provider = models.CharField(max_length=30, blank=True)  # the backend that took it ("outbox", "twilio", ...)
    provider_message_id = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # a retry or a rate limit: not before
    not_before = models.DateTimeField(null=True, blank=True)  # quiet hours
    handed_at = models.DateTimeField(null=True, blank=True)  # claimed for the provider (see the class doc)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    receipt_expected = models.BooleanField(default=False)  # the provider tells delivery later (callbacks)
    error = models.CharField(max_length=100, blank=True)  # class or provider code only
    fallback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="fallbacks", db_index=False
    )
    answer_nonce = models.CharField(max_length=16, default="", blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answer = models.CharField(max_length=10, blank=True)  # "yes" or "no" (the answer page's)
    # The account event this message tells of, for the rules whose every event is told on its own
    # (a recovery, a contact change: planning.PER_EVENT_RULES), so that a second recovery folding into
    # the active alert is told too; 0 for the others (one message per alert, channel and purpose).
    event_ref = models.BigIntegerField(default=0)
    # An action notice's subject, as the app that planned it knows it (the desk's AccountAction.uuid).
    reference = models.UUIDField(null=True, blank=True)
    # An action notice of a contact-detail change: which contact it changes (NOTICE_FIELDS), so that
    # the message and its answer page say it; "" when it names none. Never the value. Checked by
    # action_notice_plan, not by a constraint (one would scan the whole table under lock to be added).
    notice_field = models.CharField(max_length=10, blank=True, default="")
    # Several alerts of one customer raised together (a login that is both a new device and a new
    # network) make one message per channel: their rows share a bundle; one is sent and says all of
    # them, the others are `skipped` (error "coalesced"); an answer to any link of the bundle answers
    # every alert in it (alerts.notifications.planning, answers).
    bundle = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "channel", "purpose", "event_ref"],
                condition=~models.Q(purpose="previous_contact"),
                name="notification_one_per_alert_channel_purpose",
            ),
            models.UniqueConstraint(
                fields=["alert", "channel", "recipient_digest", "event_ref"],
                condition=models.Q(purpose="previous_contact"),
                name="notification_one_per_previous_contact",
            ),
            models.UniqueConstraint(fields=["fallback_of"], name="notification_one_fallback_per_row"),
            models.CheckConstraint(condition=models.Q(channel__in=Channel.values), name="notification_channel_valid"),
            models.CheckConstraint(condition=models.Q(state__in=State.values), name="notification_state_valid"),
        ]
        indexes = [
            # The relay's and the sender's look for rows still to send: a small index of the few
            # queued rows, not of the whole table.
            models.Index(fields=["created_at"], name="notification_queued_idx", condition=models.Q(state="queued")),
            # Rows waiting for a delivery receipt, for the delivery-window fallback.
            models.Index(
                fields=["sent_at"],
                name="notification_awaiting_idx",
                condition=models.Q(state="sent", receipt_expected=True),
            ),
            models.Index(fields=["customer", "created_at"], name="notification_customer_idx"),
            models.Index(
                fields=["reference"], name="notification_reference_idx", condition=models.Q(reference__isnull=False)
            ),
            models.Index(fields=["bundle"], name="notification_bundle_idx", condition=models.Q(bundle__isnull=False)),
            # An SMS reply ("NO") finds the latest unanswered text sent to its number by digest.
            models.Index(
                fields=["recipient_digest", "-sent_at"],
                name="notification_sms_reply_idx",
                condition=models.Q(channel="sms", answered_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"notification #{self.pk} ({self.channel})"

    def audit_label(self) -> str:
        return f"{self.channel} notification #{self.pk}"  # never the address

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(9)  # 12 characters, 72 random bits

    def answer_token(self) -> str:
        """The signed, single-use token of this notification's "Was this you?" link: its id and the
        random nonce kept on the row, signed with the site's key and timestamped (expiry:
        the tenant's answer_link_days, checked when read). Forging one needs SECRET_KEY; once
        answered (answered_at), or when the nonce is replaced, it no longer works
        (alerts.notifications.answers.notification_get_by_answer_token)."""
        return signing.TimestampSigner(salt=ANSWER_SALT).sign(f"{self.pk}.{self.answer_nonce}")

    def answer_url(self) -> str:
        """The absolute "Was this you?" link (the public answer page, /r/<token>/)."""
        return f"{settings.NOTIFICATION_PUBLIC_URL.rstrip('/')}/r/{self.answer_token()}/"


class OutboxMessage(models.Model):
    """What the development outbox backend "sent": the message as the provider would have had it.
    Production backends store nothing here. `idempotency_key` is deliberately not unique: the
    tests count duplicates instead of letting the database hide them."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="outbox_messages")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    recipient = EncryptedTextField(blank=True)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField()
    idempotency_key = models.UUIDField(db_index=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"outbox message #{self.pk} ({self.channel})"


class ContactField(models.TextChoices):
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"


class CustomerContactChange(models.Model):
    """A customer's email or phone as it was before a change, kept so that a recovery or a contact
    change can be told to the previous address too (NIST SP 800-63B-4): an attacker who changed
    the address first would otherwise get the warning himself. Written by customers_upsert in the
    transaction of the change."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contact_changes", db_index=False)
    field = models.CharField(max_length=10, choices=ContactField.choices)
    old_value = EncryptedTextField()
    old_masked = models.CharField(max_length=64, blank=True)
    old_digest = models.CharField(max_length=32, blank=True)
    changed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["customer", "changed_at"], name="contact_change_customer_idx")]

    def __str__(self) -> str:
        return f"{self.field} change of customer #{self.customer_id}"


class DeliveryDrill(models.Model):
    """A delivery test: a test notification to a tenant's test customer on every channel, fired by
    a tenant admin or on schedule; its notifications (purpose `test`) keep the timings, so a
    supervisor can show a client the delivery record."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    started_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # none: scheduled
    started_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["tenant", "-started_at"], name="drill_tenant_idx")]

    def __str__(self) -> str:
        return f"delivery drill #{self.pk}"
