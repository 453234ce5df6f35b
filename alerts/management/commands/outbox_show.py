import json

from django.core.management.base import BaseCommand

from alerts.notifications.selectors import outbox_backend_configured, outbox_list


class Command(BaseCommand):
    help = (
        "Print what the development outbox backends stored (channel, recipient, subject, body), oldest "
        "first: what would have been sent. Production backends store nothing there."
    )

    def add_arguments(self, parser):
        parser.add_argument("--alert", type=int, metavar="ID", help="only the messages of this alert")
        parser.add_argument("--to-customer", type=int, metavar="ID", help="only the messages to this customer")
        parser.add_argument("--limit", type=int, default=50, metavar="N", help="the newest N (default 50)")
        parser.add_argument("--json", action="store_true", help="a JSON list")

    def handle(self, *args, alert, to_customer, limit, **options):
        messages = list(outbox_list(alert_id=alert, customer_id=to_customer, limit=max(1, limit)))[::-1]
        if options["json"]:
            self.stdout.write(json.dumps([_item(m) for m in messages], indent=2))
            return
        if not outbox_backend_configured():
            self.stderr.write("No channel uses the outbox backend: production backends store nothing here.")
        if not messages:
            self.stdout.write("The outbox is empty.")
        for m in messages:
            n = m.notification
            self.stdout.write(
                f"--- #{m.pk} {m.created_at:%Y-%m-%d %H:%M:%S} {m.channel} to {m.recipient} "
                f"(alert {n.alert_id or '-'}, customer {n.customer_id}, {n.purpose}, notification {n.pk})"
            )
            if m.subject:
                self.stdout.write(f"Subject: {m.subject}")
            self.stdout.write(m.body + "\n")


def _item(m) -> dict:
    n = m.notification
    return {
        "id": m.pk, "channel": m.channel, "recipient": m.recipient, "subject": m.subject, "body": m.body,
        "notification": n.pk, "alert": n.alert_id, "customer": n.customer_id, "purpose": n.purpose,
        "idempotency_key": str(m.idempotency_key), "created_at": m.created_at.isoformat(),
    }  # fmt: skip
