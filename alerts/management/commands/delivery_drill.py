import json
import time

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Tenant
from alerts.models import Customer
from alerts.notifications.models import FINAL_STATES, DeliveryDrill, State
from alerts.notifications.selectors import delivery_drill_results
from alerts.notifications.services import delivery_drill_start, notification_settings_update


class Command(BaseCommand):
    help = (
        "Send a delivery test to a tenant's test customer on every channel on file and print, per channel, "
        "whether and how fast it arrived (--history: the last drills). --set-customer and --every-hours set "
        "the test customer and the scheduled drill (beat). Recorded in the audit trail."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", metavar="TENANT")
        parser.add_argument("--customer", metavar="EXTERNAL_ID", help="this customer instead of the test customer")
        parser.add_argument("--set-customer", metavar="EXTERNAL_ID", help="make this the tenant's test customer")
        parser.add_argument("--every-hours", type=int, metavar="N", help="a scheduled drill every N hours (0: none)")
        parser.add_argument("--wait", type=float, default=10.0, metavar="S", help="seconds to wait for receipts")
        parser.add_argument("--history", type=int, metavar="N", help="print the last N drills and send none")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, slug, customer, set_customer, every_hours, wait, history, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No such tenant: {slug}.")
        try:
            if set_customer is not None or every_hours is not None:
                changes = {}
                if set_customer is not None:
                    changes["drill_customer"] = self._customer(tenant, set_customer)
                if every_hours is not None:
                    changes["drill_every_hours"] = every_hours
                notification_settings_update(tenant=tenant, **changes)
                self.stdout.write(f"{tenant.slug}: delivery test settings saved")
                return
            if history:
                drills = DeliveryDrill.objects.filter(tenant=tenant).order_by("-started_at")[:history]
            else:
                target = self._customer(tenant, customer) if customer else None
                drill = delivery_drill_start(tenant=tenant, customer=target)
                self._wait(drill, wait)
                drills = [drill]
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError(" ".join(getattr(exc, "messages", [str(exc)]))) from exc
        report = [
            {"drill": d.pk, "started_at": d.started_at.isoformat(), "results": delivery_drill_results(drill=d)}
            for d in drills
        ]
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        for item in report:
            self.stdout.write(f"drill #{item['drill']} at {item['started_at']}")
            if not item["results"]:
                self.stdout.write("  no channel on file")
            for r in item["results"]:
                timing = f"delivered after {r['delivered_ms']} ms" if r["delivered_ms"] is not None else (
                    f"handed over after {r['handed_ms']} ms" if r["handed_ms"] is not None else "not handed over"
                )  # fmt: skip
                self.stdout.write(f"  {r['channel']:<6} {r['state']:<10} {timing} {r['error']}".rstrip())

    @staticmethod
    def _customer(tenant, external_id: str) -> Customer:
        found = Customer.objects.filter(tenant=tenant, external_id=external_id).first()
        if found is None:
            raise CommandError(f"No such customer of {tenant.slug}: {external_id}.")
        return found

    @staticmethod
    def _wait(drill: DeliveryDrill, seconds: float) -> None:
        """Until every message of the drill is final (or handed to a provider that tells no receipt)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pending = drill.notifications.exclude(state__in=FINAL_STATES).exclude(
                state=State.SENT, receipt_expected=False
            )
            if not pending.exists():
                return
            time.sleep(0.2)
