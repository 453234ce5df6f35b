from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.management.commands.create_tenant import _messages
from accounts.models import Tenant
from desk.action_services import action_settings_knowledge_set, action_settings_update
from desk.selectors import action_settings_for


class Command(BaseCommand):
    help = (
        "Show or set a tenant's account-action settings: the hold after the customer is told of a contact "
        "change (minutes), the actions a customer's “No, it wasn't me” asks the client's systems for, and what "
        "knowledge questions alone allow. Audited."
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
        parser.add_argument(
            "--knowledge-allows",
            nargs="+",
            metavar="STEP",
            help="what knowledge questions alone allow: low-risk actions (lock, reset_password, revoke_sessions, "
            "revoke_app) and reveal; or none",
        )

    def handle(self, *args, tenant, hold_minutes=None, on_customer_no=None, knowledge_allows=None, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No such tenant: {tenant}.")
        if on_customer_no == ["none"]:
            on_customer_no = []
        if knowledge_allows == ["none"]:
            knowledge_allows = []
        try:
            with transaction.atomic():  # all the options, or none of them
                if hold_minutes is not None or on_customer_no is not None:
                    action_settings_update(
                        tenant=found, notice_hold_minutes=hold_minutes, customer_no_actions=on_customer_no
                    )
                if knowledge_allows is not None:
                    action_settings_knowledge_set(tenant=found, allows=knowledge_allows)
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        settings = action_settings_for(tenant_id=found.pk)
        self.stdout.write(f"hold after a contact-change notice: {settings.notice_hold_minutes} minutes")
        self.stdout.write(f"a customer's No asks for: {', '.join(settings.customer_no_actions) or 'nothing'}")
        self.stdout.write(f"knowledge questions alone allow: {', '.join(settings.knowledge_allows) or 'nothing'}")
