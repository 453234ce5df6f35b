from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Tenant
from alerts.services import ingest_settings_update


class Command(BaseCommand):
    help = (
        "Show or change a tenant's event-API settings: whether requests must be signed, and the rate "
        "limit (events per second). Prints the resulting settings; every change is recorded."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", metavar="TENANT", help="the tenant's slug, e.g. acme-bank")
        signature = parser.add_mutually_exclusive_group()
        signature.add_argument(
            "--signature-required",
            dest="signature_required",
            action="store_const",
            const=True,
            help="refuse unsigned requests (the default for every tenant)",
        )
        signature.add_argument(
            "--no-signature-required",
            dest="signature_required",
            action="store_const",
            const=False,
            help="accept unsigned requests: only while a client is onboarding",
        )
        parser.add_argument("--rate-limit", type=int, metavar="N", help="events per second for this tenant")

    def handle(self, *args, slug, signature_required, rate_limit, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No such tenant: {slug}.")
        try:
            settings = ingest_settings_update(
                tenant=tenant, signature_required=signature_required, rate_limit_per_second=rate_limit
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"tenant: {tenant.slug}")
        self.stdout.write(f"signature required: {'yes' if settings.signature_required else 'no'}")
        self.stdout.write(f"rate limit: {settings.rate_limit_per_second} events per second")
