import getpass
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.management.commands.create_tenant import _messages
from accounts.models import Role, Tenant, User


class Command(BaseCommand):
    help = (
        "Create a staff user, or add roles to an existing one. --role admin with no --tenant makes a "
        "BPO-wide admin; every other role needs at least one --tenant."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--tenant", action="append", default=[], metavar="SLUG", help="repeat for several")
        parser.add_argument("--email", default="")
        parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        parser.add_argument(
            "--no-default-queue", action="store_true", help="an agent is not granted the tenants' default queues"
        )

    def handle(self, *args, username, role, tenant, email, password_stdin, no_default_queue, **options):
        slugs = tenant
        if not slugs and role != Role.ADMIN:
            raise CommandError(f"A {role} needs at least one --tenant.")
        tenants = list(Tenant.objects.filter(slug__in=slugs))
        missing = sorted(set(slugs) - {t.slug for t in tenants})
        if missing:
            raise CommandError(f"No such tenant: {', '.join(missing)}.")

        user = User.objects.filter(username=username).first()
        password = None
        if user is None:
            password = self._read_password(password_stdin)
        try:
            with transaction.atomic():
                if user is None:
                    user = services.user_create(
                        username=username, password=password, email=email, is_bpo_admin=not slugs
                    )
                    action = "Created"
                else:
                    if not slugs:
                        services.user_set_bpo_admin(user=user, is_bpo_admin=True)
                    action = "Updated"
                for t in tenants:
                    services.membership_set(user=user, tenant=t, role=role)
                if role == Role.AGENT and not no_default_queue:
                    # A command is an entry point, not the identity domain: it may reach the desk
                    # (accounts' services and models never import it).
                    from desk.services import queue_grant_default

                    for t in tenants:
                        queue_grant_default(tenant=t, user=user)
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        where = ", ".join(t.slug for t in tenants) if tenants else "every tenant (BPO-wide admin)"
        self.stdout.write(self.style.SUCCESS(f"{action} {username}: {role} in {where}."))
        self.stdout.write("They set up two-factor authentication the first time they sign in.")

    def _read_password(self, from_stdin: bool) -> str:
        if from_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            if not sys.stdin.isatty():
                raise CommandError("No terminal to ask for the password: use --password-stdin.")
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The passwords do not match.")
        if not password:
            raise CommandError("The password cannot be empty.")
        return password
