"""Email delivery receipts: django-anymail normalises each provider's delivery and bounce webhooks
into its `tracking` signal; this records them on the notification whose provider message id they
name (alerts.notifications.services.notification_status_record: never backwards, a failure tries
the next channel). The webhook URLs (config/urls.py) are public, checked by anymail against the
ANYMAIL WEBHOOK_SECRET basic auth, and answer 404 when none is configured."""

import logging

from anymail.signals import EventType, tracking
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.dispatch import receiver
from django.http import Http404
from django.urls import URLPattern

from accounts.decorators import mfa_not_required
from alerts.notifications.models import Channel, Notification, State

logger = logging.getLogger(__name__)

EMAIL_STATES = {
    EventType.DELIVERED: State.DELIVERED,
    EventType.BOUNCED: State.BOUNCED,
    EventType.REJECTED: State.FAILED,
    EventType.FAILED: State.FAILED,
}


@receiver(tracking, dispatch_uid="alerts.notifications.email_tracking")
def email_tracking_record(sender, event, esp_name, **kwargs) -> None:
    """One provider event: a delivery, bounce, rejection or failure of an email we sent."""
    from alerts.notifications.services import notification_status_record

    state = EMAIL_STATES.get(event.event_type)
    if state is None or not event.message_id:
        return
    with transaction.atomic():
        row = (
            Notification.objects.filter(channel=Channel.EMAIL, provider_message_id=str(event.message_id)[:100])
            .values_list("pk", flat=True)
            .first()
        )
        if row is None:
            logger.info("email event for no notification of ours", extra={"esp": esp_name})
            return
        reason = (event.reject_reason or event.event_type or "").lower()
        notification_status_record(
            notification_id=row,
            state=state,
            provider_message_id=str(event.message_id),
            code=f"email_{reason}" if state != State.DELIVERED else "",
        )


def _when_configured(view):
    """The provider's webhook view, public, and 404 unless a webhook secret is configured."""

    def guarded(request, *args, **kwargs):
        if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
            raise Http404("Email webhooks are not configured.")
        return view(request, *args, **kwargs)

    guarded.csrf_exempt = True  # anymail checks the basic auth instead
    guarded.__name__ = guarded.__qualname__ = "email_tracking_webhook"  # one name for every provider's
    return mfa_not_required(login_not_required(guarded))


def tracking_urlpatterns() -> list[URLPattern]:
    """anymail's tracking webhooks (not its inbound ones), each guarded as above."""
    from anymail.urls import urlpatterns

    return [
        URLPattern(p.pattern, _when_configured(p.callback), p.default_args, p.name)
        for p in urlpatterns
        if p.name and p.name.endswith("_tracking_webhook")
    ]
