from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from alerts.selectors import event_ids_unprocessed


class Command(BaseCommand):
    help = (
        "Run detection again, once the cause of a failure is fixed: over the events set aside as dead letters "
        "(--all, or --id N for one letter), or over events left unprocessed (--unprocessed: their task gave up "
        "on a lost database or broker, or was never queued)."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--all", action="store_true", help="every unresolved dead letter")
        which.add_argument("--id", type=int, action="append", dest="ids", metavar="N", help="this dead letter (repeat)")
        which.add_argument("--unprocessed", action="store_true", help="events still unprocessed after --older-than")
        parser.add_argument("--older-than", type=int, default=10, metavar="MINUTES", help="with --unprocessed")

    def handle(self, *args, all: bool, ids: list[int] | None, unprocessed: bool, older_than: int, **options):
        from alerts.detection import dead_letters_reprocess, events_process

        if unprocessed:
            if older_than < 1:
                raise CommandError("--older-than must be at least 1 minute (newer events are still queued).")
            pending = event_ids_unprocessed(older_than=timedelta(minutes=older_than))
            done = sum(events_process(event_ids=pending[start : start + 500]) for start in range(0, len(pending), 500))
            self.stdout.write(f"{len(pending)} unprocessed events found, {done} processed.")
            return
        resolved, failed = dead_letters_reprocess(letter_ids=None if all else ids)
        self.stdout.write(f"{resolved} dead letters resolved, {failed} failed again.")
        if failed:
            raise CommandError(f"{failed} events failed again: see the dead letters in Django admin.")
