"""Celery tasks of notifications: they take ids and call services (alerts/notifications/services.py)."""

import logging

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

logger = logging.getLogger(__name__)

SEND_MAX_RETRIES = 12
SEND_BACKOFF_MAX = 60


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=SEND_MAX_RETRIES)
def notification_send_task(self, notification_ids: list[int]) -> int:
    """Send these notifications. Safe to run again, and twice at once: a row is claimed once (see
    alerts.notifications.services). acks_late with reject_on_worker_lost: a worker killed mid-send
    leaves the message on the broker for another worker. Only transient failures of our own
    (database, broker) are retried here; a provider's are the rows' own retries."""
    from alerts.dead_letters import error_class, is_transient
    from alerts.notifications.services import notifications_send

    try:
        return notifications_send(notification_ids=notification_ids).handed
    except Exception as error:
        if not is_transient(error) or self.request.retries >= self.max_retries:
            logger.error(
                "notification sending failed; the relay will queue the rows again",
                extra={"notifications": len(notification_ids), "error": error_class(error)},
            )
            raise
        countdown = get_exponential_backoff_interval(
            factor=2, retries=self.request.retries, maximum=SEND_BACKOFF_MAX, full_jitter=True
        )
        raise self.retry(exc=error, countdown=countdown) from error


@shared_task(ignore_result=True)
def notifications_relay_task() -> int:
    """Beat, every minute: queue rows whose task was lost, settle rows in doubt."""
    from alerts.notifications.services import notifications_relay

    queued, settled = notifications_relay()
    return queued + settled


@shared_task(ignore_result=True)
def notifications_fallback_task() -> int:
    """Beat: the next channel for alert messages not delivered within the tenant's window."""
    from alerts.notifications.services import notifications_fall_back_undelivered

    return notifications_fall_back_undelivered()


@shared_task(ignore_result=True)
def delivery_drills_due_task() -> int:
    """Beat: a delivery drill for each tenant whose scheduled drill is due."""
    from alerts.notifications.services import delivery_drills_due_run

    return delivery_drills_due_run()
