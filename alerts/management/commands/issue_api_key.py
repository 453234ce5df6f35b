import json

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Tenant
from alerts.keys import api_key_issue


class Command(BaseCommand):
    help = (
        "Issue a new event-API key and signing secret for a tenant, printed once. Earlier keys keep working "
        "for the overlap period (INGEST_KEY_OVERLAP_HOURS, default 24)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--json", action="store_true", help='print {"tenant", "api_key", "signing_secret"}')

    def handle(self, *args, slug, json: bool, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No such tenant: {slug}.")
        issued = api_key_issue(tenant=tenant)
        if json:
            self.stdout.write(
                _dumps({"tenant": tenant.slug, "api_key": issued.api_key, "signing_secret": issued.signing_secret})
            )
            return
        self.stdout.write(f"API key for {tenant.slug} (shown once, store it now):\n  {issued.api_key}")
        self.stdout.write(f"Signing secret (HMAC-SHA256 of '<timestamp>.<body>'):\n  {issued.signing_secret}")


def _dumps(value) -> str:
    return json.dumps(value)
