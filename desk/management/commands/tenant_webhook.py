import argparse

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.management.commands.create_tenant import _messages
from accounts.models import Tenant
from alerts.notifications.services import notification_push_secret_rotate, notification_settings_update
from desk.action_services import tenant_webhook_set


class Command(BaseCommand):
    help = (
        "Set a tenant's account-action webhook URL (or, with --push, its push webhook to its app) and "
        "print a NEW signing secret, once: it is stored encrypted and never shown again (run this again "
        "to rotate it)."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", metavar="TENANT", help="the tenant's slug")
        parser.add_argument("url", metavar="URL", help="the client's endpoint (http or https)")
        parser.add_argument(
            "--push", action="store_true", help="set the push webhook (customer pushes to the app) instead"
        )
        parser.add_argument(
            "--receipts",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="with --push: the app posts delivery receipts (the delivery-window fallback waits for them)",
        )

    def handle(self, *args, tenant, url, push, receipts, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No such tenant: {tenant}.")
        if receipts is not None and not push:
            raise CommandError("--receipts goes with --push.")
        try:
            with transaction.atomic():
                if push:
                    changes = {"push_webhook_url": url} | ({} if receipts is None else {"push_receipts": receipts})
                    notification_settings_update(tenant=found, **changes)
                    secret = notification_push_secret_rotate(tenant=found)
                else:
                    secret = tenant_webhook_set(tenant=found, url=url)
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        what = "Pushes to the customers of" if push else "Account actions of"
        self.stdout.write(self.style.SUCCESS(f"{what} {tenant} now go to {url}."))
        self.stdout.write("Signing secret (shown once; give it to the client, who checks X-AlertDesk-Signature):")
        self.stdout.write(secret)
