"""Detection: run the rules over newly stored events. Filled in by the rules step."""

from django.db import transaction
from django.utils import timezone

from alerts.models import AccountEvent


def events_process(*, event_ids: list[int]) -> int:
    done = 0
    for event_id in event_ids:
        with transaction.atomic():
            event = AccountEvent.objects.select_for_update().filter(pk=event_id, processed_at__isnull=True).first()
            if event is None:
                continue
            event.processed_at = timezone.now()
            event.save(update_fields=["processed_at"])
            done += 1
    return done
