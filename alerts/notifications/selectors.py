"""Reads of notifications: tenants' settings, an alert's notifications, the development outbox, and
the answer link's token. Staff reads take an alert already fetched through its access function
(alerts.selectors.alert_get_for) and add no access check of their own."""

from django.conf import settings
from django.db.models import Prefetch, QuerySet

from accounts.selectors import tenant_ids_with_perm
from alerts.models import Alert
from alerts.notifications.models import (
    Channel,
    DeliveryDrill,
    Notification,
    NotificationSettings,
    OutboxMessage,
)

DRILL_VIEW_PERM = "alerts.view_deliverydrill"
DRILL_RUN_PERM = "alerts.add_deliverydrill"


def notification_settings_for(*, tenant_ids) -> dict[int, NotificationSettings]:
    """Each tenant's notification settings: its row, or (unsaved) the defaults, with
    `local_time_zone` set from the tenant's message settings (the one place a tenant's time zone is
    kept; quiet hours are in it). One query."""
    from accounts.models import Tenant
    from alerts.models import MessageSettings

    found = {}
    tenants = Tenant.objects.filter(pk__in=set(tenant_ids)).select_related("notification_settings", "message_settings")
    for tenant in tenants:
        try:
            row = tenant.notification_settings
        except NotificationSettings.DoesNotExist:
            row = NotificationSettings(tenant_id=tenant.pk)
        try:
            row.local_time_zone = tenant.message_settings.time_zone or "UTC"
        except MessageSettings.DoesNotExist:
            row.local_time_zone = "UTC"
        found[tenant.pk] = row
    for tid in set(tenant_ids) - set(found):  # no such tenant: the defaults, as before
        found[tid] = NotificationSettings(tenant_id=tid)
    return found


def notification_settings_get(*, tenant) -> NotificationSettings:
    return notification_settings_for(tenant_ids=[tenant.pk])[tenant.pk]


def notification_for_push_receipt(*, idempotency_key) -> tuple[int, str] | None:
    """(id, the tenant's push secret) of the push with this key, for checking a receipt's
    signature; None when there is no such push or its tenant has no secret."""
    row = (
        Notification.objects.filter(idempotency_key=idempotency_key, channel=Channel.PUSH)
        .values_list("pk", "tenant_id")
        .first()
    )
    if row is None:
        return None
    secret = notification_settings_for(tenant_ids=[row[1]])[row[1]].push_webhook_secret
    return (row[0], secret) if secret else None


def notification_list_for_alert(*, alert: Alert) -> QuerySet[Notification]:
    """The notifications of an alert the caller fetched through alerts.selectors.alert_get_for,
    oldest first. No address is loaded (so none is decrypted)."""
    return (
        Notification.objects.filter(alert_id=alert.pk)
        .only("id", "channel", "state", "purpose", "created_at", "sent_at", "delivered_at", "fallback_of_id")
        .order_by("created_at", "id")
    )


def outbox_list(*, alert_id: int | None = None, customer_id: int | None = None, limit: int = 200):
    """What the development outbox backend stored, newest first (with each row's notification)."""
    messages = OutboxMessage.objects.select_related("notification").order_by("-id")
    if alert_id is not None:
        messages = messages.filter(notification__alert_id=alert_id)
    if customer_id is not None:
        messages = messages.filter(notification__customer_id=customer_id)
    return messages[:limit]


def outbox_backend_configured() -> bool:
    """Whether any channel sends through the development outbox (its page is shown only then)."""
    from alerts.notifications.channels import backend_for

    return any(backend_for(channel).name == "outbox" for channel in settings.NOTIFICATION_BACKENDS)


def delivery_drill_list_for(*, user, tenant_id: int | None = None) -> QuerySet[DeliveryDrill]:
    """The delivery drills `user` may see (alerts.view_deliverydrill in their tenants), newest
    first, with their notifications' timings prefetched. Deny by default: no tenant, no drill."""
    tenant_ids = tenant_ids_with_perm(user=user, perm=DRILL_VIEW_PERM)
    drills = DeliveryDrill.objects.filter(tenant_id__in=tenant_ids).select_related("tenant", "started_by")
    if tenant_id is not None:
        drills = drills.filter(tenant_id=tenant_id)
    return drills.prefetch_related(
        Prefetch("notifications", queryset=Notification.objects.defer("recipient").order_by("id"))
    ).order_by("-started_at", "-id")


def delivery_drill_results(*, drill: DeliveryDrill) -> list[dict]:
    """Per channel of a drill fetched through delivery_drill_list_for (or by the service that made
    it): its state, and how long after the drill started it was handed over and delivered (ms)."""

    def after(at):
        return None if at is None else round((at - drill.started_at).total_seconds() * 1000)

    return [
        {"channel": n.channel, "state": n.state, "handed_ms": after(n.sent_at), "delivered_ms": after(n.delivered_at),
         "error": n.error}
        for n in drill.notifications.order_by("pk")  # planned in the tenant's channel order
    ]  # fmt: skip
