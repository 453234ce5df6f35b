from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.management.commands.create_tenant import _messages
from accounts.models import Tenant
from desk.action_services import action_settings_update
from desk.selectors import action_settings_for


class Command(BaseCommand):
    help = (
        "Show or set a tenant's account-action settings: the hold after the customer is told of a contact "
        "change (minutes), and the actions a customer's “No, it wasn't me” asks the client's systems for. Audited."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", metavar="TENANT", help="the tenant's slug")
        parser.add_argument("--hold-minutes", type=int, help="the hold after a contact-change notice (0 to 10080)")
        parser.add_argument(
            "--on-customer-no",
            nargs="+",
            metavar="ACTION",
            help="revoke_sessions, reset_password, lock; or none",
        )

    def handle(self, *args, tenant, hold_minutes=None, on_customer_no=None, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No such tenant: {tenant}.")
        if on_customer_no == ["none"]:
            on_customer_no = []
        if hold_minutes is not None or on_customer_no is not None:
            try:
                action_settings_update(
                    tenant=found, notice_hold_minutes=hold_minutes, customer_no_actions=on_customer_no
                )
            except ValidationError as exc:
                raise CommandError(_messages(exc)) from exc
        settings = action_settings_for(tenant_id=found.pk)
        self.stdout.write(f"hold after a contact-change notice: {settings.notice_hold_minutes} minutes")
        self.stdout.write(f"a customer's No asks for: {', '.join(settings.customer_no_actions) or 'nothing'}")
