from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Tenant
from audit.archive import ArchiveError, audit_archive_segment


class Command(BaseCommand):
    help = (
        "Archive the audit events of a tenant (or of the chain without a tenant) that are past the retention "
        "period into a verifiable file, and record the removal in the chain. Run as the database table owner."
    )

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", metavar="SLUG")
        target.add_argument("--global", dest="global_chain", action="store_true")
        parser.add_argument("--before", metavar="YYYY-MM-DD", help="an earlier cut-off than the retention period")
        parser.add_argument("--dir", help="where to write the file (default AUDIT_ARCHIVE_DIR)")

    def handle(self, *args, tenant=None, global_chain=False, before=None, dir=None, **options):
        found = None
        if tenant:
            found = Tenant.objects.filter(slug=tenant).first()
            if found is None:
                raise CommandError(f"No such tenant: {tenant}.")
        cutoff = None
        if before:
            try:
                cutoff = datetime.strptime(before, "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError as exc:
                raise CommandError("--before takes a date: YYYY-MM-DD.") from exc
        try:
            archive = audit_archive_segment(tenant=found, before=cutoff, directory=dir)
        except ArchiveError as exc:
            raise CommandError(str(exc)) from exc
        if archive is None:
            self.stdout.write("Nothing is old enough to archive.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Archived events #{archive.first_seq}-#{archive.last_seq} ({archive.event_count}) "
                f"to {archive.file_name}; head {archive.head_hash[:16]}…; the removal is recorded in the chain."
            )
        )
