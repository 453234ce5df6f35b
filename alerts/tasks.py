from celery import shared_task


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=None,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=60,
)
def events_process_task(self, event_ids: list[int]) -> int:
    """Run detection over these events. Safe to run again: processed events are skipped, and a
    run that died mid-way left nothing half-done (each event is one transaction)."""
    from alerts.detection import events_process

    return events_process(event_ids=event_ids)
