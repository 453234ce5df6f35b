"""The answer's scheduled task (registered from alerts/apps.py: Celery discovers `<app>.tasks` only)."""

from celery import shared_task


@shared_task(ignore_result=True)
def notifications_no_answer_task() -> int:
    """Apply each tenant's no_answer_action to the alerts whose customer did not answer in time
    (beat, every minute). Idempotent: an escalated alert is critical and no longer a candidate."""
    from alerts.notifications.answers import alerts_escalate_unanswered

    return len(alerts_escalate_unanswered())
