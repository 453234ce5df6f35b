from django.db import models

from alerts.crypto import EncryptedTextField


class EventType(models.TextChoices):
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    PASSWORD_CHANGED = "password.changed"
    PASSWORD_RESET_REQUESTED = "password.reset_requested"
    MFA_ENROLLED = "mfa.enrolled"
    MFA_DISABLED = "mfa.disabled"
    MFA_CHALLENGE_FAILED = "mfa.challenge_failed"
    MFA_OTP_SENT = "mfa.otp_sent"
    RECOVERY_REQUESTED = "recovery.requested"
    RECOVERY_COMPLETED = "recovery.completed"
    PROFILE_CHANGED = "profile.changed"
    THIRD_PARTY_AUTHORIZED = "third_party.authorized"
    TRANSACTION_CREATED = "transaction.created"


class IngestSettings(models.Model):
    """A tenant's ingestion settings. Created with defaults the first time a key is issued."""

    tenant = models.OneToOneField(
        "accounts.Tenant", primary_key=True, on_delete=models.CASCADE, related_name="ingest_settings"
    )
    signature_required = models.BooleanField(
        default=True, help_text="Refuse unsigned requests. Turn off only while a client is onboarding."
    )
    rate_limit_per_second = models.PositiveIntegerField(default=10_000, help_text="Events per second, per tenant.")

    def __str__(self) -> str:
        return f"ingestion settings of {self.tenant}"


class ApiKey(models.Model):
    """A tenant's key for the event API. The key is stored hashed (it is random and long, so a
    plain SHA-256 is enough); the signing secret, which must be read back to check signatures,
    is stored encrypted. Shown once, when issued."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    signing_secret = EncryptedTextField()
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Set when a newer key replaces this one.")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.tenant} key {self.prefix}…"


class Customer(models.Model):
    """A tenant's end customer: the account at the client that events are about.

    Contact details are personal data: encrypted at rest, masked in every staff screen, never
    logged. `external_id` is the client's own id for the account.
    """

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="customers", db_index=False)
    external_id = models.CharField(max_length=128)
    email = EncryptedTextField(blank=True)
    phone = EncryptedTextField(blank=True)
    display_name = EncryptedTextField(blank=True)
    # The masked forms that staff screens show (audit.masking.mask), written with the contacts: a
    # list of alerts never decrypts personal data to mask it. A database default too: rows inserted in
    # SQL (bench/ingest.py) without contacts need none.
    email_masked = models.CharField(max_length=64, blank=True, default="", db_default="")
    phone_masked = models.CharField(max_length=64, blank=True, default="", db_default="")
    locale = models.CharField(max_length=35, blank=True)
    channels = models.JSONField(default=dict, blank=True)  # {"email": true, "sms": false, ...}
    # Keyed digests of the encrypted fields ({"email": ...}): ingestion tells a change without
    # decrypting. A missing or stale digest only costs one decrypt-and-compare.
    contact_digests = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="customer_tenant_external_unique")
        ]

    def __str__(self) -> str:
        return f"customer #{self.pk}"

    def audit_label(self) -> str:
        return f"customer #{self.pk}"  # never contact details


class AccountEvent(models.Model):
    """One event a client system sent about a customer's account. Append-mostly and huge: the
    key is time-ordered (an identity that follows arrival), `received_at` gets a BRIN index on
    PostgreSQL, and the table is ready to be range-partitioned on it."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="events", db_index=False)
    external_id = models.CharField(max_length=128)  # the client's id: the idempotency key per tenant
    type = models.CharField(max_length=40, choices=EventType.choices)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    context = models.JSONField(default=dict, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="account_event_tenant_external_unique")
        ]
        indexes = [
            # Per-account history for the rules (windows of failures, known devices, last login).
            models.Index(fields=["customer", "type", "occurred_at"], name="account_event_customer_idx"),
            # Credential stuffing: failures from one address across accounts.
            models.Index(fields=["tenant", "ip", "occurred_at"], name="account_event_ip_idx"),
            # The relay's look for events whose detection task was lost: a small index of the few
            # unprocessed rows, not of the whole table.
            models.Index(
                fields=["received_at"],
                name="account_event_unprocessed_idx",
                condition=models.Q(processed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"


class AlertType(models.TextChoices):
    """The seven kinds of security alert of the seed article, plus the escalation that links them."""

    LOGIN = "login", "Login from a new device"
    LOCATION = "location", "Access from a new place"
    SUSPICIOUS = "suspicious", "Suspicious activity"
    PASSWORD = "password", "Password change"
    TWO_FACTOR = "two_factor", "Two-factor change"
    RECOVERY = "recovery", "Account recovery"
    THIRD_PARTY = "third_party", "Third-party access"
    ACCOUNT_TAKEOVER = "account_takeover", "Possible account takeover"


class Severity(models.IntegerChoices):
    LOW = 1, "Low"
    MEDIUM = 2, "Medium"
    HIGH = 3, "High"
    CRITICAL = 4, "Critical"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


ACTIVE_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)

# The lifecycle: where each status may go. Resolved and dismissed are final: a new occurrence of
# the same rule on the same subject raises a new alert (de-duplication folds into active ones only).
ALERT_TRANSITIONS: dict[str, frozenset[str]] = {
    AlertStatus.OPEN: frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED, AlertStatus.DISMISSED}),
    AlertStatus.ACKNOWLEDGED: frozenset({AlertStatus.RESOLVED, AlertStatus.DISMISSED}),
    AlertStatus.RESOLVED: frozenset(),
    AlertStatus.DISMISSED: frozenset(),
}


class Alert(models.Model):
    """A security alert about a customer's account (or, for credential stuffing, about a source).

    Created and updated only through alerts.detection / services, audited, announced on commit.
    The same rule on the same subject within its window updates one active alert (count, last
    seen, more evidence) instead of flooding the queue.
    """

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="alerts")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts")
    type = models.CharField(max_length=30, choices=AlertType.choices)
    rule = models.CharField(max_length=60)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)
    status = models.CharField(max_length=20, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    reason = models.CharField(max_length=300)  # why, in one sentence
    dedupe_key = models.CharField(max_length=200)
    count = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)  # resolved or dismissed
    closed_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    resolution_note = models.CharField(max_length=500, blank=True)
    # Working the alert: one staff member holds it at a time (alerts.services.alert_claim). Kept
    # when the alert is resolved or dismissed: who worked it is history.
    assignee = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    assigned_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)  # the first claim or acknowledgement
    # The tenant's SLA for the alert's severity (alerts.sla), from when it was raised. `sla_due_at`
    # is the one that applies now: first response until it happens, then resolution; none once final.
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    sla_due_at = models.DateTimeField(null=True, blank=True)
    evidence = models.ManyToManyField(AccountEvent, through="AlertEvidence", related_name="alerts")
    related = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="escalations")

    class Meta:
        ordering = ["-last_seen_at"]
        permissions = [("reassign_alert", "Can release or reassign an alert another staff member holds")]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "dedupe_key"],
                condition=models.Q(status__in=["open", "acknowledged"]),
                name="alert_one_active_per_dedupe_key",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "-last_seen_at"], name="alert_queue_idx"),
            models.Index(fields=["customer", "created_at"], name="alert_customer_idx"),
            # A desk queue's active alerts in queue order (desk.selectors.QUEUE_ORDER), read straight
            # from the index: the first page does not sort the tenant's active alerts. With the type
            # and the holder beside them (PostgreSQL), the queues' counts (desk.selectors.queue_counts)
            # are read from the index alone, not from a heap page per active alert.
            models.Index(
                fields=["tenant", "-severity", "sla_due_at", "first_seen_at", "id"],
                condition=models.Q(status__in=["open", "acknowledged"]),
                include=["type", "assignee"],
                name="alert_active_queue_order_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} #{self.pk}"

    def audit_label(self) -> str:
        return self.get_type_display().lower()  # the audit shows "Alert #2 (password change)"


class SlaPolicy(models.Model):
    """A tenant's service level for one severity: minutes from raising an alert to its first
    response (a claim or an acknowledgement) and to its resolution. A tenant without a row for a
    severity gets the defaults in alerts.sla."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="sla_policies")
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)
    first_response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "severity"], name="sla_policy_tenant_severity_unique")]

    def __str__(self) -> str:
        return f"{self.tenant}: SLA for {self.get_severity_display().lower()}"


class AlertEvidence(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE)
    event = models.ForeignKey(AccountEvent, on_delete=models.PROTECT)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alert", "event"], name="alert_evidence_unique")]

    def __str__(self) -> str:
        return f"alert {self.alert_id} ← event {self.event_id}"


class RuleSetting(models.Model):
    """A tenant's override of one detection rule: on/off, severity, thresholds (merged over the
    rule's defaults)."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="rule_settings")
    rule = models.CharField(max_length=60)
    enabled = models.BooleanField(default=True)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices, null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "rule"], name="rule_setting_unique")]

    def __str__(self) -> str:
        return f"{self.tenant}: {self.rule}"


class CustomerState(models.Model):
    """What detection remembers about an account: known devices, user-agent families, places.
    Locked (SELECT ... FOR UPDATE) while one event of the account is processed, so concurrent
    events of the same account are judged one after the other."""

    customer = models.OneToOneField(Customer, primary_key=True, on_delete=models.CASCADE, related_name="state")
    devices = models.JSONField(default=list)  # device ids or user-agent fingerprints
    agent_families = models.JSONField(default=list)  # "Chrome/Windows"
    countries = models.JSONField(default=list)
    networks = models.JSONField(default=list)
    last_login = models.JSONField(default=dict)  # {"at", "lat", "lon", "country"}
    amounts = models.JSONField(default=dict)  # latest transaction amounts per currency: {"EUR": ["12.50"]}
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"state of customer #{self.customer_id}"


class EventDeadLetter(models.Model):
    """An event that detection could not judge, set aside so that the rest of its chunk went on.

    Its event is marked processed (no task picks it up again); `events_reprocess` runs detection
    over it again once the cause is fixed, and marks the letter resolved. Holds no personal data:
    the error's class and where it was raised (file and line, no values), never its message.
    """

    event = models.OneToOneField(AccountEvent, on_delete=models.PROTECT, related_name="dead_letter")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    error = models.CharField(max_length=200, help_text="The exception's class.")
    where = models.CharField(max_length=200, blank=True, help_text="Where it was raised: file, line, function.")
    attempts = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_failed_at"]
        indexes = [
            models.Index(
                fields=["last_failed_at"], condition=models.Q(resolved_at__isnull=True), name="dead_letter_open_idx"
            )
        ]

    def __str__(self) -> str:
        return f"dead letter #{self.pk} (event #{self.event_id})"


class MessageChannel(models.TextChoices):
    """The channels a customer message goes out on (the notifications' channels)."""

    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    VOICE = "voice", "Voice call"


class MessageKind(models.TextChoices):
    """What a message template is for: each alert type, and the delivery test (seed practice 7)."""

    LOGIN = AlertType.LOGIN.value, AlertType.LOGIN.label
    LOCATION = AlertType.LOCATION.value, AlertType.LOCATION.label
    SUSPICIOUS = AlertType.SUSPICIOUS.value, AlertType.SUSPICIOUS.label
    PASSWORD = AlertType.PASSWORD.value, AlertType.PASSWORD.label
    TWO_FACTOR = AlertType.TWO_FACTOR.value, AlertType.TWO_FACTOR.label
    RECOVERY = AlertType.RECOVERY.value, AlertType.RECOVERY.label
    THIRD_PARTY = AlertType.THIRD_PARTY.value, AlertType.THIRD_PARTY.label
    ACCOUNT_TAKEOVER = AlertType.ACCOUNT_TAKEOVER.value, AlertType.ACCOUNT_TAKEOVER.label
    TEST = "test", "Delivery test"


class MessageSettings(models.Model):
    """How a tenant's customer messages name it and where they send customers: the name customers
    know, the official web domain (the only one a template may link to, besides the signed answer
    page), the official support contact, the time zone times are given in, and the locale used
    when a customer's is not available. Changed only through
    alerts.notifications.template_services, audited."""

    tenant = models.OneToOneField(
        "accounts.Tenant", primary_key=True, on_delete=models.CASCADE, related_name="message_settings"
    )
    display_name = models.CharField(
        max_length=40, blank=True, help_text="The name customers know (SMS cut it at 20 characters)."
    )
    official_domain = models.CharField(max_length=253, blank=True, help_text="e.g. acme-bank.example")
    support_phone = models.CharField(max_length=20, blank=True, help_text="In international form: +44 20 7946 0000")
    support_url = models.URLField(max_length=200, blank=True, help_text="An https page on the official domain.")
    time_zone = models.CharField(max_length=64, default="UTC")
    default_locale = models.CharField(max_length=35, default="en")
    updated_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"message settings of {self.tenant}"

    def audit_label(self) -> str:
        return "message settings"


class NotificationTemplate(models.Model):
    """A tenant's own wording of one customer message: per kind (alert type or delivery test),
    channel and locale (BCP 47). Without one, the built-in default is sent
    (alerts.notifications.defaults). Saved only through `notification_template_save`, which runs
    the template check and records the change with its before and after text."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="notification_templates")
    alert_type = models.CharField(max_length=30, choices=MessageKind.choices)
    channel = models.CharField(max_length=10, choices=MessageChannel.choices)
    locale = models.CharField(max_length=35)
    subject = models.CharField(max_length=200, blank=True, help_text="The e-mail subject or the push title.")
    body = models.TextField()
    updated_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "alert_type", "channel", "locale"], name="notification_template_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(channel__in=["email", "sms", "push", "voice"]), name="notification_template_channel"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant}: {self.alert_type} {self.channel} ({self.locale})"

    def audit_label(self) -> str:
        return f"{self.get_channel_display()} message for {self.get_alert_type_display().lower()} ({self.locale})"


# Customer notifications live in their own module (alerts/notifications/models.py); imported here so
# that they are models of this app.
from alerts.notifications.models import (  # noqa: E402
    CustomerContactChange,
    DeliveryDrill,
    Notification,
    NotificationSettings,
    OutboxMessage,
)

__all__ = [
    "ACTIVE_STATUSES", "ALERT_TRANSITIONS", "AccountEvent", "Alert", "AlertEvidence", "AlertStatus", "AlertType",
    "ApiKey", "Customer", "CustomerContactChange", "CustomerState", "DeliveryDrill", "EventDeadLetter", "EventType",
    "IngestSettings", "MessageChannel", "MessageKind", "MessageSettings", "Notification", "NotificationSettings",
    "NotificationTemplate", "OutboxMessage", "RuleSetting", "Severity", "SlaPolicy",
]  # fmt: skip
