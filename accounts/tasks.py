from celery import shared_task

from accounts.services import session_expired_clear


@shared_task
def session_expired_clear_task() -> int:
    """Delete expired sessions (scheduled hourly by Celery beat). Returns how many went."""
    return session_expired_clear()
