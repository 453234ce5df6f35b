from django.conf import settings
from django.db import models


class Action(models.TextChoices):
    VIEW = "view", "Viewed"
    LIST = "list", "Listed"
    CREATE = "create", "Created"
    UPDATE = "update", "Updated"
    DELETE = "delete", "Deleted"
    REVEAL = "reveal", "Revealed personal data"
    EXPORT = "export", "Exported"
    LOGIN = "login", "Signed in"
    LOGIN_FAILED = "login_failed", "Sign-in failed"
    LOGIN_LOCKED = "login_locked", "Sign-in locked out"
    LOGOUT = "logout", "Signed out"
    SESSION_EXPIRED = "session_expired", "Session expired"
    MFA_VERIFIED = "mfa_verified", "Passed two-factor step"
    MFA_FAILED = "mfa_failed", "Failed two-factor step"
    MFA_ENROLLED = "mfa_enrolled", "Enrolled an authenticator"
    MFA_BACKUP_CODES = "mfa_backup_codes", "Made new backup codes"
    REAUTH = "reauth", "Re-authenticated"
    REAUTH_FAILED = "reauth_failed", "Re-authentication failed"
    ROLE_CHANGED = "role_changed", "Role changed"
    MEMBERSHIP_CHANGED = "membership_changed", "Membership changed"
    USER_ACTIVATED = "user_activated", "User activated"
    USER_DEACTIVATED = "user_deactivated", "User deactivated"
    TENANT_SWITCHED = "tenant_switched", "Switched tenant"
    ARCHIVED = "archived", "Archived a closed segment of the trail"


class Origin(models.TextChoices):
    WEB = "web", "Desk"
    API = "api", "API"
    ADMIN = "admin", "Django admin"
    CLI = "cli", "Command line"
    SYSTEM = "system", "System"


class AuditEvent(models.Model):
    """One thing that happened: a view of data, a change, a sign-in. Append-only.

    Database triggers refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL). Rows are written inside
    the transaction of the change they describe, with no chain lock; a sealer later gives each one
    its place (`AuditSeal`) in its tenant's hash chain, in commit order.
    """

    occurred_at = models.DateTimeField(db_index=False)
    tenant = models.ForeignKey(
        "accounts.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    actor_label = models.CharField(max_length=150, blank=True)  # the username then, should it change
    actor_role = models.CharField(max_length=20, blank=True)  # the role held in the tenant then
    action = models.CharField(max_length=32, choices=Action.choices)
    origin = models.CharField(max_length=10, choices=Origin.choices)
    target_type = models.CharField(max_length=64, blank=True)  # "app_label.model", or a page name
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)  # short, never personal data in clear
    changes = models.JSONField(default=dict, blank=True)  # {"field": {"before": ..., "after": ...}}, masked
    reason = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)  # e.g. {"ids": [...]} for a list
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # Every review screen pages by id (keyset): each filter leads with its column.
            models.Index(fields=["tenant", "id"], name="audit_tenant_id_idx"),
            models.Index(fields=["actor", "id"], name="audit_actor_id_idx"),
            models.Index(fields=["target_type", "target_id", "id"], name="audit_target_id_idx"),
            # Rare actions (exports, reveals, failed sign-ins) are the searches that matter most:
            # one tenant's via (action, tenant), everyone's via a short sort of the action's rows.
            models.Index(fields=["action", "tenant", "id"], name="audit_action_tenant_id_idx"),
            # An object's changes newest first, without its (far more numerous) views: the case
            # timeline reads a page of them (desk.selectors.case_timeline_page). Only changes are
            # indexed, so recording a view costs no more.
            models.Index(
                fields=["target_type", "target_id", "-occurred_at", "-id"],
                name="audit_target_changes_idx",
                condition=models.Q(action__in=["create", "update"]),
            ),
            # occurred_at follows id closely: PostgreSQL gets a BRIN index on it (migration 0004), a
            # few pages instead of a B-tree that every insert would have to maintain.
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(action__in=Action.values), name="audit_action_valid"),
            models.CheckConstraint(condition=models.Q(origin__in=Origin.values), name="audit_origin_valid"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.target_type}:{self.target_id}"

    @property
    def chain_key(self) -> int:
        return self.tenant_id or 0


class AuditSeal(models.Model):
    """An event's place in its chain: sequence number and keyed hash over (content, previous hash).

    One chain per tenant and one (key 0) for events without a tenant. Append-only like the events.
    `key_id` names the seal key (AUDIT_SEAL_KEYS) of the HMAC; "" marks a seal made before seals
    were keyed (plain SHA-256), which verify accepts only up to a signed checkpoint.
    """

    event = models.OneToOneField(AuditEvent, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False)
    chain = models.BigIntegerField()  # tenant id, or 0
    seq = models.BigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()
    key_id = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_seal_chain_seq_unique")]

    def __str__(self) -> str:
        return f"chain {self.chain} #{self.seq}"


class AuditChainHead(models.Model):
    """The newest seal of each chain; its row lock makes one sealer at a time per chain."""

    chain = models.BigIntegerField(primary_key=True)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"chain {self.chain} at #{self.seq}"


class AuditCheckpoint(models.Model):
    """A signed chain head (HMAC with a key kept outside the database), written on a schedule, so
    that cutting off the newest events is detected too. Append-only."""

    chain = models.BigIntegerField()
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    signature = models.CharField(max_length=64)
    key_id = models.CharField(max_length=16, blank=True, default="")  # "": AUDIT_CHECKPOINT_KEY

    class Meta:
        indexes = [models.Index(fields=["chain", "-seq"], name="audit_checkpoint_chain_idx")]

    def __str__(self) -> str:
        return f"checkpoint chain {self.chain} #{self.seq}"


class AuditArchive(models.Model):
    """A closed segment of a chain that left the database into a file, kept as a record of where
    the chain now starts. The removal itself is an event in the chain."""

    chain = models.BigIntegerField()
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)  # the hash of last_seq: the next seal's prev_hash
    file_name = models.CharField(max_length=300)
    file_sha256 = models.CharField(max_length=64)
    event_count = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "last_seq"], name="audit_archive_chain_last_unique")]

    def __str__(self) -> str:
        return f"archive chain {self.chain} #{self.first_seq}-{self.last_seq}"


class AuditSealerState(models.Model):
    """The sealer's single row: its lock makes one sealer at a time.

    `high_id` is the highest event id sealed; ids below it that were missing when it passed them
    (a transaction still open, or rolled back) wait in `gaps` ({id: first seen, epoch seconds}) to
    be sealed when they commit, and are dropped after the grace period.
    """

    high_id = models.BigIntegerField(default=0)
    gaps = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"sealed up to #{self.high_id}, {len(self.gaps)} gaps"
