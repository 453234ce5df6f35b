from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.demo import DEMO_TENANTS
from accounts.models import Tenant
from desk.demo_client import DemoClient


class Command(BaseCommand):
    help = (
        "Play the demo tenants' own systems: point their account-action webhooks here and answer each "
        "signed call (see desk/demo_client.py). Development only; runs until interrupted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8124)
        parser.add_argument("tenants", nargs="*", metavar="TENANT", help="slugs (default: the demo tenants)")

    def handle(self, *args, port, tenants, **options):
        if settings.PRODUCTION:
            raise CommandError("demo_client refuses to run in production.")
        slugs = tenants or [slug for slug, _ in DEMO_TENANTS]
        found = list(Tenant.objects.filter(slug__in=slugs).order_by("slug"))
        if len(found) != len(set(slugs)):
            missing = sorted(set(slugs) - {t.slug for t in found})
            raise CommandError(f"No such tenant: {', '.join(missing)} (run make run first, for the demo data).")
        try:
            client = DemoClient(port=port, say=lambda line: self.stdout.write(line))
        except OSError as error:
            raise CommandError(f"Cannot listen on port {port}: {error.strerror}.") from None
        for url in client.take_over(found):
            self.stdout.write(self.style.SUCCESS(f"Account actions now go to {url} (new secret, kept here)"))
        self.stdout.write("Waiting for calls; Ctrl+C stops (the webhooks then point nowhere: run this again).")
        try:
            client.server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            client.server.server_close()
