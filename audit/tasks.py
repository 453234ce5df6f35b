from celery import shared_task

from audit.services import SEAL_BATCH, audit_checkpoint, audit_seal


@shared_task(ignore_result=True)
def audit_seal_task() -> int:
    """Seal what committed since the last run (beat, every second), batch after batch."""
    total = 0
    while True:
        sealed = audit_seal()
        total += sealed
        if sealed < SEAL_BATCH:
            return total


@shared_task(ignore_result=True)
def audit_checkpoint_task() -> int:
    return len(audit_checkpoint())
