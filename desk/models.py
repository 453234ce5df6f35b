import uuid

from django.db import models

from alerts.crypto import EncryptedTextField
from alerts.models import Severity


class Queue(models.Model):
    """A tenant's queue: the desk's view over the tenant's alerts, not a field of the alert.

    An alert belongs to the most specific queue of its tenant whose filter it matches (alert types,
    minimum severity), else to the tenant's `default` queue, which has no filter; so every alert is
    in exactly one queue (desk.selectors.queue_alerts_q / queue_for_alert). Agents work the queues
    they are granted with django-guardian (`desk.work_queue` on the queue); supervisors and admins
    of the tenant see all of them. Changed only through desk.services.
    """

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="queues")
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    # alerts.models.AlertType values; [] takes every type.
    alert_types = models.JSONField(default=list, blank=True)
    # alerts.models.Severity value (1-4); null takes every severity.
    min_severity = models.PositiveSmallIntegerField(null=True, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant_id", "-is_default", "slug"]
        permissions = [("work_queue", "Work the alerts of this queue")]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="queue_unique_tenant_slug"),
            models.UniqueConstraint(
                fields=["tenant"], condition=models.Q(is_default=True), name="queue_one_default_per_tenant"
            ),
            # The default queue takes whatever no other queue takes: it has no filter of its own.
            models.CheckConstraint(
                condition=models.Q(is_default=False) | models.Q(alert_types=[], min_severity__isnull=True),
                name="queue_default_has_no_filter",
            ),
            models.CheckConstraint(
                condition=models.Q(min_severity__isnull=True) | models.Q(min_severity__gte=1, min_severity__lte=4),
                name="queue_min_severity_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.slug}"

    def audit_label(self) -> str:
        return self.slug  # the audit shows "Queue #3 (takeover)"


class CaseStatus(models.TextChoices):
    OPEN = "open", "Open"
    WAITING_ON_CUSTOMER = "waiting_on_customer", "Waiting on the customer"
    RESOLVED = "resolved", "Resolved"


# A customer has at most one case in these statuses (constraint case_one_open_per_customer).
OPEN_CASE_STATUSES = (CaseStatus.OPEN, CaseStatus.WAITING_ON_CUSTOMER)

# Where each status may go (desk.services.case_status_set / case_close). Resolved is final: the
# customer's next alert opens a new case, whose timeline still shows everything that came before.
CASE_TRANSITIONS: dict[str, frozenset[str]] = {
    CaseStatus.OPEN: frozenset({CaseStatus.WAITING_ON_CUSTOMER, CaseStatus.RESOLVED}),
    CaseStatus.WAITING_ON_CUSTOMER: frozenset({CaseStatus.OPEN, CaseStatus.RESOLVED}),
    CaseStatus.RESOLVED: frozenset(),
}


class CaseOutcome(models.TextChoices):
    CONFIRMED_LEGITIMATE = "confirmed_legitimate", "Confirmed legitimate by the customer"
    ACCOUNT_SECURED = "account_secured", "Account secured"
    FALSE_POSITIVE = "false_positive", "False positive"
    ESCALATED_TO_CLIENT = "escalated_to_client", "Escalated to the client's security team"


class CaseOpenedVia(models.TextChoices):
    ALERT = "alert", "From an alert"
    CUSTOMER_ANSWER = "customer_answer", "The customer answered “No, it wasn't me”"
    AGENT = "agent", "By an agent"


class Case(models.Model):
    """One customer's related alerts, worked together: the agent verifies the caller, follows the
    playbook, reveals personal data only with a reason, and closes it with an outcome.

    A case lives in a queue (the queue of the alert it was opened from, else the tenant's default)
    and is seen exactly as that queue is (desk.selectors.case_list_for): agents granted the queue,
    supervisors and admins of the tenant, plus a specialist it is shared with (guardian object
    permission `desk.work_case` on the case). At most one open case per customer; changed only
    through desk.services. SLA clocks as for alerts (alerts.sla), from the case's severity (the
    highest of its alerts) and when it was opened.
    """

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="cases")
    customer = models.ForeignKey("alerts.Customer", on_delete=models.PROTECT, related_name="cases")
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="cases")
    status = models.CharField(max_length=24, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    outcome = models.CharField(max_length=24, choices=CaseOutcome.choices, blank=True)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)  # the highest of its alerts
    alerts = models.ManyToManyField("alerts.Alert", through="CaseAlert", related_name="cases")
    opened_via = models.CharField(max_length=20, choices=CaseOpenedVia.choices)
    opened_by = models.ForeignKey(  # null when the customer's own answer opened it
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assignee = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    assigned_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)  # the first claim, note or status change
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    sla_due_at = models.DateTimeField(null=True, blank=True)  # the one that applies now; none once resolved
    # The caller is verified as the customer until then (set by the verification work; None: not
    # verified). desk.selectors.case_is_verified is the one place that reads it.
    verified_until = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_method = models.CharField(max_length=40, blank=True)
    opened_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    resolution_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("work_case", "Work this case (shared with a specialist)"),
            ("supervise_case", "Share cases, reveal without verification, review security concerns"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(status__in=["open", "waiting_on_customer"]),
                name="case_one_open_per_customer",
            ),
            # An outcome says how a case ended: set when, and only when, it is resolved.
            models.CheckConstraint(
                condition=(
                    models.Q(status="resolved")
                    & models.Q(
                        outcome__in=["confirmed_legitimate", "account_secured", "false_positive", "escalated_to_client"]
                    )
                )
                | (~models.Q(status="resolved") & models.Q(outcome="")),
                name="case_outcome_when_resolved",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status", "-id"], name="case_tenant_status_idx")]

    def __str__(self) -> str:
        return f"case #{self.pk}"

    def audit_label(self) -> str:
        return f"customer #{self.customer_id}"  # the audit shows "Case #3 (customer #12)": never contacts


class CaseAlert(models.Model):
    """An alert of a case, and when it joined it (the case's timeline shows both)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="case_alerts")
    alert = models.ForeignKey("alerts.Alert", on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField()
    # The alert's first_seen_at (it never changes), kept here so that the case timeline reads its
    # alerts newest first from this table's index, a page at a time, whatever their number: ordered
    # through the join, PostgreSQL may walk the alerts' primary key instead (bench/case_page.py).
    alert_seen_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "alert"], name="case_alert_unique")]
        indexes = [models.Index(fields=["case", "alert_seen_at", "id"], name="case_alert_time_idx")]

    def __str__(self) -> str:
        return f"case {self.case_id} ← alert {self.alert_id}"


class CaseNote(models.Model):
    """A staff member's note on a case. Append-only: a correction is a new note."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["case", "created_at", "id"], name="case_note_time_idx")]

    def __str__(self) -> str:
        return f"note #{self.pk} on case {self.case_id}"


class RevealField(models.TextChoices):
    EMAIL = "email", "Email address"
    PHONE = "phone", "Phone number"
    DISPLAY_NAME = "display_name", "Name"


class RevealReason(models.TextChoices):
    CONFIRM_WITH_CUSTOMER = "confirm_with_customer", "Confirm a detail with the verified customer"
    SECURE_ACCOUNT = "secure_account", "Needed to secure the account"
    CONCERN_REVIEW = "concern_review", "Review of a security concern"
    OTHER = "other", "Other (say why below)"


class CaseReveal(models.Model):
    """One field of the customer's personal data shown in clear to one staff member, with the
    reason they gave, for a few minutes (expires_at). The value itself is never stored here nor in
    the audit trail."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="reveals")
    actor = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    field = models.CharField(max_length=20, choices=RevealField.choices)
    reason_code = models.CharField(max_length=30, choices=RevealReason.choices)
    reason_text = models.CharField(max_length=500)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["case", "created_at", "id"], name="case_reveal_time_idx")]

    def __str__(self) -> str:
        return f"reveal #{self.pk} of {self.field} on case {self.case_id}"


class ConcernKind(models.TextChoices):
    SOCIAL_ENGINEERING = "social_engineering", "Suspected social engineering"
    PHISHING = "phishing", "Suspected phishing"
    OTHER = "other", "Other security concern"


class ConcernStatus(models.TextChoices):
    OPEN = "open", "Waiting for review"
    REVIEWED = "reviewed", "Reviewed"


class SecurityConcern(models.Model):
    """A staff member's report that a contact on a case looks like an attack (a caller pretending
    to be the customer, a phishing attempt): a review item for the tenant's supervisors, who hear
    of it live."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="concerns")
    # None: raised by the desk itself (repeated wrong verification codes, desk.verification).
    raised_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=24, choices=ConcernKind.choices)
    note = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=ConcernStatus.choices, default=ConcernStatus.OPEN)
    reviewed_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.CharField(max_length=1000, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "status", "-id"], name="concern_review_idx"),
            models.Index(fields=["case", "created_at", "id"], name="concern_case_time_idx"),
        ]

    def __str__(self) -> str:
        return f"concern #{self.pk} on case {self.case_id}"

    def audit_label(self) -> str:
        return self.kind


class PlaybookOverride(models.Model):
    """A tenant's own playbook for one alert type, in place of the default (desk.playbooks): what
    the agent verifies and tells, what the customer is told to do, and more things never to ask
    for. The defaults' "never ask for" list always applies: a tenant can add to it, not remove it."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+")
    alert_type = models.CharField(max_length=30)
    verify = models.JSONField(default=list, blank=True)  # [str]: what the agent checks
    tell = models.JSONField(default=list, blank=True)  # [str]: what the agent tells the customer
    never_ask = models.JSONField(default=list, blank=True)  # [str]: added to the defaults'
    customer_steps = models.JSONField(default=list, blank=True)  # [str]: the customer-facing steps
    updated_at = models.DateTimeField()
    updated_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "alert_type"], name="playbook_override_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}: playbook for {self.alert_type}"

    def audit_label(self) -> str:
        return self.alert_type


class PlaybookCheck(models.Model):
    """A playbook step ticked on a case: who, when, and the step's text as it read then (a tenant
    may edit its playbook later; QA reviews what the agent saw)."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="playbook_checks")
    alert_type = models.CharField(max_length=30)
    step_key = models.CharField(max_length=40)
    step_text = models.CharField(max_length=500)
    checked_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    checked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "alert_type", "step_key"], name="playbook_check_unique"),
        ]
        indexes = [models.Index(fields=["case", "checked_at", "id"], name="playbook_check_time_idx")]

    def __str__(self) -> str:
        return f"{self.alert_type}/{self.step_key} on case {self.case_id}"


# --- verification of the caller (desk.verification) -------------------------------------------------


class VerificationMethod(models.TextChoices):
    OTP = "otp", "One-time code"
    PUSH_MATCH = "push_match", "Number matching in the app"
    CALLBACK = "callback", "Callback to the number on file"
    KNOWLEDGE = "knowledge", "Knowledge questions"


class VerificationStrength(models.TextChoices):
    STRONG = "strong", "Strong"
    WEAK = "weak", "Weak"  # never enough alone for a high-risk action


# Something the customer has (a channel on file) is strong; something they know is weak (NIST SP 800-63B-4).
METHOD_STRENGTH = {
    VerificationMethod.OTP: VerificationStrength.STRONG,
    VerificationMethod.PUSH_MATCH: VerificationStrength.STRONG,
    VerificationMethod.CALLBACK: VerificationStrength.STRONG,
    VerificationMethod.KNOWLEDGE: VerificationStrength.WEAK,
}


class VerificationState(models.TextChoices):
    PENDING = "pending", "Waiting for the code"
    VERIFIED = "verified", "Verified"
    FAILED = "failed", "Failed (too many wrong codes)"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class Verification(models.Model):
    """One attempt to verify that the caller of a case is its customer: a one-time code sent to a
    channel on file (or a number shown in the tenant's app), read back to the agent; or a callback
    to the number on file, recorded by the agent. Only a hash of the code is kept (HMAC-SHA256 with
    the project's secret and a salt of this row); the clear code lives in memory and in the message
    handed to the channel backend (the development outbox stores that message: development only).

    One verification waiting for its code per customer at a time, whoever the agent (constraint
    verification_one_pending_per_customer): two agents cannot run parallel attempts on one account.
    Changed only through desk.verification."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="verifications")
    customer = models.ForeignKey("alerts.Customer", on_delete=models.PROTECT, related_name="+")
    method = models.CharField(max_length=12, choices=VerificationMethod.choices)
    channel = models.CharField(max_length=10, blank=True)  # alerts Channel of the code; callback: voice
    recipient_masked = models.CharField(max_length=64, blank=True)
    notification = models.ForeignKey(
        "alerts.Notification", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    code_hash = models.CharField(max_length=128, blank=True)  # "<salt>$<hex HMAC>"; never the code
    strength = models.CharField(max_length=8, choices=VerificationStrength.choices)
    attempts = models.PositiveSmallIntegerField(default=0)  # wrong codes entered
    state = models.CharField(max_length=10, choices=VerificationState.choices, default=VerificationState.PENDING)
    requested_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()  # the code works until then
    verified_at = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)  # the caller counts as verified until then
    note = models.CharField(max_length=500, blank=True)  # a callback: what the agent recorded

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer"], condition=models.Q(state="pending"), name="verification_one_pending_per_customer"
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=["pending", "verified", "failed", "expired", "cancelled"]),
                name="verification_state_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "created_at"], name="verification_customer_idx"),
            models.Index(fields=["case", "created_at", "id"], name="verification_case_time_idx"),
        ]

    def __str__(self) -> str:
        return f"verification #{self.pk} ({self.method}) on case {self.case_id}"

    def audit_label(self) -> str:
        return self.method


# --- account actions through the client's systems (desk.actions, desk.action_services) ---------------


class ActionState(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Waiting for a supervisor's approval"
    # The customer's contacts on file were told; it goes out when the tenant's hold period ends
    # (hold_until), unless a supervisor sends it sooner or the customer answers "No".
    WAITING = "waiting", "Customer told; waiting for the hold period"
    ON_HOLD = "on_hold", "On hold: the customer said it was not them"
    REQUESTED = "requested", "Requested"
    SENT = "sent", "Sent to the client"
    CONFIRMED = "confirmed", "Confirmed by the client"
    FAILED = "failed", "Failed"
    # It had not gone out (waiting for approval, for the hold, or on hold) when its case was
    # resolved: final, never sent (desk.action_services.actions_cancel_for_resolved_case).
    CANCELLED = "cancelled", "Cancelled: the case was resolved before it went out"


# Not gone out yet and not on its way: what resolving the case cancels. A requested or sent action
# is on its way to the client (the agent locked the account, then resolved): it still goes.
ACTION_PENDING_STATES = (ActionState.PENDING_APPROVAL, ActionState.WAITING, ActionState.ON_HOLD)


class ActionRequestedVia(models.TextChoices):
    AGENT = "agent", "A staff member"
    CUSTOMER_ANSWER = "customer_answer", "The customer's “No, it wasn't me”"


class AccountAction(models.Model):
    """An action on the customer's account in the client's systems (lock, reset the password,
    revoke sessions, ...; desk.actions holds the kinds), sent as the contract's signed webhook.
    `uuid` is the id the client dedupes on: a retry carries the same one. Changed only through
    desk.action_services."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="actions")
    customer = models.ForeignKey("alerts.Customer", on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=30)
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=20, choices=ActionState.choices)
    # None: the customer asked, by answering "No, it wasn't me" (requested_via customer_answer).
    requested_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    requested_via = models.CharField(
        max_length=20, choices=ActionRequestedVia.choices, default=ActionRequestedVia.AGENT
    )
    requested_at = models.DateTimeField()
    hold_until = models.DateTimeField(null=True, blank=True)  # waiting: sent when this passes
    verification_method = models.CharField(max_length=40, blank=True)  # the case's, when requested
    needs = models.CharField(max_length=300, blank=True)  # why it waits for a supervisor
    approved_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_reason = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=100, blank=True)  # a class or HTTP status, never a body
    sent_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    state__in=[
                        "pending_approval",
                        "waiting",
                        "on_hold",
                        "requested",
                        "sent",
                        "confirmed",
                        "failed",
                        "cancelled",
                    ]
                ),
                name="account_action_state_valid",
            ),
            # Two people: whoever approves is not who asked.
            models.CheckConstraint(
                condition=models.Q(approved_by__isnull=True) | ~models.Q(approved_by=models.F("requested_by")),
                name="account_action_four_eyes",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "requested_at"], name="account_action_customer_idx"),
            models.Index(fields=["case", "requested_at", "id"], name="account_action_case_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} #{self.pk} on case {self.case_id}"

    def audit_label(self) -> str:
        return self.action


class ActionSettings(models.Model):
    """A tenant's account-action settings: where the signed webhook goes, its secret (encrypted;
    shown once, by `manage.py tenant_webhook`), the cooling-off window in which a contact change
    and a credential or MFA reset of one customer need a supervisor's approval with a reason, the
    hold after the customer is told of a contact change, and what a customer's "No" asks for."""

    tenant = models.OneToOneField("accounts.Tenant", primary_key=True, on_delete=models.CASCADE, related_name="+")
    webhook_url = models.URLField(blank=True)
    webhook_secret = EncryptedTextField(blank=True)
    cooling_off_hours = models.PositiveSmallIntegerField(default=24)
    # The steps a caller verified by knowledge questions alone (weak) may be given: low-risk action
    # kinds (desk.actions) and "reveal". Never a high-risk kind: action_settings_knowledge_set refuses
    # one, and desk.action_services asks strong verification for them whatever this says.
    knowledge_allows = models.JSONField(default=list, blank=True)
    # How long a contact-detail change waits after the contacts on file were told (issue 11), so
    # that their "No" can stop it. Short by default: the customer is usually on the line, verified
    # strongly and approved by a second person; ten minutes covers the notification's own delivery
    # window (5 minutes, then the next channel) and the time to read a text and tap the link.
    notice_hold_minutes = models.PositiveIntegerField(default=10)
    # Account actions asked for when a customer answers "No, it wasn't me" (desk.actions keys; low
    # risk only: revoke_sessions, reset_password, lock). None by default: the tenant enables them.
    customer_no_actions = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"account-action settings of {self.tenant_id}"


class KnowledgeQuestion(models.Model):
    """A question the tenant's agents may ask a caller (\"Which city did you open the account in?\"):
    a weak factor (something the caller knows), never enough alone for a high-risk action. The
    answers are the client's: the desk sends what the caller says to the tenant's signed webhook,
    which answers match or not (desk.verification.verification_knowledge_check); the desk keeps no
    expected answer, and no answer given. Edited per tenant in Django admin."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+")
    key = models.SlugField(max_length=40, help_text="What the client's webhook receives the answer under.")
    text = models.CharField(max_length=200, help_text="The question as the agent reads it out.")
    position = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["tenant_id", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="knowledge_question_unique_key")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.key}"

    def audit_label(self) -> str:
        return self.key
