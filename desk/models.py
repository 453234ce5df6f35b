from django.db import models


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
