"""Celery tasks of the desk: they take ids and call services; retries live here."""

import logging

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

logger = logging.getLogger(__name__)

ACTION_MAX_RETRIES = 6  # then failed: about 2 minutes of backoff (2, 4, ... 60 s, full jitter)
ACTION_BACKOFF_MAX = 60


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def account_action_send_task(action_id: int) -> str:
    """POST one account action to the tenant's signed webhook; while the tenant does not answer 2xx,
    try again later with exponential backoff and jitter, up to ACTION_MAX_RETRIES more times, then
    fail it. The count is the row's own `attempts` (not celery's retry counter): it survives a lost
    message, and the relay of a redelivered task cannot add attempts beyond the bound. A repeat
    carries the same action id, which the client dedupes on (acks_late: a worker lost mid-call sends
    it again)."""
    from desk.action_services import action_deliver, action_fail
    from desk.selectors import action_attempts

    outcome = action_deliver(action_id=action_id)
    if outcome != "retry":
        return outcome
    attempts = action_attempts(action_id=action_id)
    if attempts > ACTION_MAX_RETRIES:
        action_fail(action_id=action_id)
        logger.warning("account action failed after retries", extra={"account_action": action_id})
        return "failed"
    countdown = get_exponential_backoff_interval(
        factor=2, retries=attempts - 1, maximum=ACTION_BACKOFF_MAX, full_jitter=True
    )
    account_action_send_task.apply_async((action_id,), countdown=countdown)
    return "retrying"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def verification_code_send_task(self, notification_id: int, subject: str, sealed_body: str) -> bool:
    """Hand one verification code message to its channel backend, exactly once (the notification's
    claim). The message arrives sealed (Fernet): the broker never holds the code in clear; the row
    never holds it at all (desk.verification)."""
    from desk.verification import verification_code_deliver

    return verification_code_deliver(notification_id=notification_id, subject=subject, sealed_body=sealed_body)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def account_action_release_task(action_id: int) -> bool:
    """Send an action whose hold has ended (queued with the hold as countdown when the customer was
    told); nothing if a "No" or a supervisor came first."""
    from desk.action_services import action_release_due

    return action_release_due(action_id=action_id)


@shared_task(acks_late=True, ignore_result=True)
def account_actions_release_due_task() -> int:
    """Beat, every minute: the waiting actions whose hold ended and whose own task was lost."""
    from desk.action_services import actions_release_due

    return actions_release_due()
