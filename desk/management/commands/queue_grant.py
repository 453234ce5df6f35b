from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.management.commands.create_tenant import _messages
from accounts.models import Tenant, User
from desk.models import Queue
from desk.services import queue_grant, queue_revoke


class Command(BaseCommand):
    help = "Grant a staff member of a tenant the right to work one of its queues, or revoke it (--revoke)."

    def add_arguments(self, parser):
        parser.add_argument("tenant", metavar="TENANT", help="the tenant's slug")
        parser.add_argument("queue", metavar="QUEUE", help="the queue's slug")
        parser.add_argument("username", metavar="USERNAME")
        parser.add_argument("--revoke", action="store_true")

    def handle(self, *args, tenant, queue, username, revoke, **options):
        found = Queue.objects.select_related("tenant").filter(tenant__slug=tenant, slug=queue).first()
        if found is None:
            if not Tenant.objects.filter(slug=tenant).exists():
                raise CommandError(f"No such tenant: {tenant}.")
            raise CommandError(f"No such queue of {tenant}: {queue}.")
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No such staff user: {username}.")
        try:
            if revoke:
                queue_revoke(queue=found, user=user)
            else:
                queue_grant(queue=found, user=user)
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        done, may = ("Revoked", "may not") if revoke else ("Granted", "may")
        self.stdout.write(self.style.SUCCESS(f"{done}: {username} {may} work {tenant}/{queue}."))
