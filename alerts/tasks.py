import logging

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

# Up to about eight minutes of retries (at most 2, 4, 8, ... 60 s apart: full jitter), then the task
# gives up; its events stay unprocessed and `events_reprocess --unprocessed` picks them up.
DETECTION_MAX_RETRIES = 12
DETECTION_BACKOFF_MAX = 60
# At most this many events re-queued per relay run: a backlog drains over a few minutes, in order.
DETECTION_RELAY_BATCH = 5000
RELAY_HIGH_KEY = "alerts:detection-relay:high-id"


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=DETECTION_MAX_RETRIES)
def events_process_task(self, event_ids: list[int]) -> int:
    """Run detection over these events. Safe to run again: processed events are skipped, and a
    run that died mid-way left nothing half-done (each chunk is one transaction).

    Only transient failures are retried (a lost database or broker connection, a serialization
    failure, a deadlock), a bounded number of times. An event that fails on its own account is
    set aside as a dead letter by detection itself, so it never reaches this task as an error.

    Its chunks also claim other waiting events (alerts.detection.events_process_claiming), so one
    task does the work of the many queued while it waited; ingestion queues a new task only when
    none waits unstarted (alerts.services.detection_enqueue), and this one says it has started
    before it claims, so an event stored after that point gets a task of its own."""
    from alerts.dead_letters import error_class, is_transient
    from alerts.detection import events_process_claiming
    from alerts.services import detection_enqueue, detection_task_started

    detection_task_started()
    try:
        done, more = events_process_claiming(event_ids=event_ids)
        if more:  # a backlog beyond this task's share: the next task goes on with it
            detection_enqueue([])
        return done
    except Exception as error:
        if not is_transient(error):
            raise
        if self.request.retries >= self.max_retries:
            logger.error(
                "detection gave up after its retries; the events stay unprocessed",
                extra={"events": len(event_ids), "error": error_class(error), "retries": self.request.retries},
            )
            raise
        countdown = get_exponential_backoff_interval(
            factor=2, retries=self.request.retries, maximum=DETECTION_BACKOFF_MAX, full_jitter=True
        )
        raise self.retry(exc=error, countdown=countdown) from error


@shared_task(ignore_result=True)
def events_unprocessed_relay_task() -> int:
    """Hand detection the events whose task never ran or gave up (beat, every minute): the events
    were committed before the 202, so nothing accepted is lost between the database and the
    broker. Processing is idempotent; and an event is re-queued at most once per
    DETECTION_RELAY_AFTER, so a worker that is merely far behind is not sent the same events again
    every minute (the highest id queued is remembered, shared through the cache, for that long)."""
    from alerts.selectors import event_ids_unprocessed
    from alerts.services import detection_enqueue

    window = settings.DETECTION_RELAY_AFTER
    above = cache.get(RELAY_HIGH_KEY, 0)
    ids = event_ids_unprocessed(older_than=window, after_id=above, limit=DETECTION_RELAY_BATCH)
    if ids:
        cache.set(RELAY_HIGH_KEY, ids[-1], timeout=window.total_seconds())
        logger.warning("detection relay: re-queuing events whose task was lost", extra={"events": len(ids)})
        detection_enqueue(ids, coalesce=False)  # the lost task may be what the coalescing waits on
    return len(ids)


# The notification tasks live in alerts/notifications/tasks.py; Celery's autodiscovery looks for
# `<app>.tasks` only, so they are registered from here.
from alerts.notifications import tasks as _notification_tasks  # noqa: E402, F401
