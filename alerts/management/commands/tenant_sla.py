from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Tenant
from alerts.models import Severity
from alerts.services import sla_policy_set


def _severity(value: str) -> int:
    """1 to 4, or a severity's name (low, medium, high, critical)."""
    names = {label.lower(): number for number, label in Severity.choices}
    if value.lower() in names:
        return names[value.lower()]
    if value.isdigit() and int(value) in Severity.values:
        return int(value)
    raise CommandError(f"No such severity: give 1 to 4 or one of {', '.join(names)}.")


class Command(BaseCommand):
    help = (
        "Set a tenant's service level for one alert severity: minutes from raising an alert to its first "
        "response (a claim or an acknowledgement) and to its resolution. Applies to alerts raised from now on; "
        "the change is recorded."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", metavar="TENANT", help="the tenant's slug, e.g. acme-bank")
        parser.add_argument("--severity", required=True, metavar="N", help="1 (low) to 4 (critical), or its name")
        parser.add_argument("--first-response", required=True, type=int, metavar="MIN", help="minutes")
        parser.add_argument("--resolution", required=True, type=int, metavar="MIN", help="minutes")

    def handle(self, *args, slug, severity, first_response, resolution, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No such tenant: {slug}.")
        try:
            policy = sla_policy_set(
                tenant=tenant,
                severity=_severity(severity),
                first_response_minutes=first_response,
                resolution_minutes=resolution,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(
            f"{tenant.slug}: {policy.get_severity_display().lower()} alerts: first response within "
            f"{policy.first_response_minutes} min, resolution within {policy.resolution_minutes} min"
        )
