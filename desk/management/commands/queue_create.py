from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.management.commands.create_tenant import _messages
from accounts.models import Tenant
from alerts.models import AlertType
from desk.services import queue_create


class Command(BaseCommand):
    help = (
        "Create an extra queue of a tenant. An alert belongs to the most specific queue whose filter it "
        "matches (alert types, minimum severity), else to the tenant's default queue."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", metavar="TENANT", help="the tenant's slug")
        parser.add_argument("queue", metavar="QUEUE", help="the queue's slug, e.g. takeover")
        parser.add_argument("--name", required=True)
        parser.add_argument("--types", nargs="+", default=[], metavar="T", help=f"of: {', '.join(AlertType.values)}")
        parser.add_argument("--min-severity", metavar="N", help="1 (low) to 4 (critical)")

    def handle(self, *args, tenant, queue, name, types, min_severity, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No such tenant: {tenant}.")
        severity = None
        if min_severity is not None:
            if not (min_severity.isascii() and min_severity.isdigit()):
                raise CommandError("--min-severity is a number from 1 (low) to 4 (critical).")
            severity = int(min_severity)
        try:
            created = queue_create(tenant=found, slug=queue, name=name, alert_types=types, min_severity=severity)
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Created queue {created.slug} of {found.slug} (id {created.pk})."))
