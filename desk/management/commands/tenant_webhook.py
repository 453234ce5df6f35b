from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.management.commands.create_tenant import _messages
from accounts.models import Tenant
from desk.action_services import tenant_webhook_set


class Command(BaseCommand):
    help = (
        "Set a tenant's account-action webhook URL and print a NEW signing secret, once: it is stored "
        "encrypted and never shown again (run this again to rotate it)."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", metavar="TENANT", help="the tenant's slug")
        parser.add_argument("url", metavar="URL", help="the client's endpoint (http or https)")

    def handle(self, *args, tenant, url, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No such tenant: {tenant}.")
        try:
            secret = tenant_webhook_set(tenant=found, url=url)
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Account actions of {tenant} now go to {url}."))
        self.stdout.write("Signing secret (shown once; give it to the client, who checks X-AlertDesk-Signature):")
        self.stdout.write(secret)
