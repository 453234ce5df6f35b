from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    AGENT = "agent", "Agent"
    SUPERVISOR = "supervisor", "Supervisor"
    ADMIN = "admin", "Admin"


class User(AbstractUser):
    """A member of the BPO's staff: agent, supervisor or admin.

    Staff act only inside the tenants they hold a membership of. A BPO admin
    (`is_bpo_admin`) manages every tenant and is the only kind of user who reaches Django admin.
    """

    is_bpo_admin = models.BooleanField(
        "BPO-wide admin", default=False, help_text="Manages every client tenant and reaches Django admin."
    )

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username


class Tenant(models.Model):
    """A client company of the BPO, whose end customers the desk protects."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    audit_retention_days = models.PositiveIntegerField(
        default=2557, help_text="How long audit events stay in the database before they may be archived (days)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A staff user's role inside one tenant. Changed only through services."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.tenant} · {self.role}"
