"""Demo alerts for `make run`: hundreds of alerts per demo tenant, raised by the real pipeline.

Development only. Account events of made-up customers go through the event API's validation,
`events_ingest` and detection, so every alert, its evidence, its queue and its audit trail are
what production would make. Part of them are processed "as of" a few hours ago (detection's `now`),
so their SLA clocks have run out and the queues show breaching alerts.
"""

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from alerts.detection import events_process
from alerts.models import Alert
from alerts.services import events_ingest
from alerts.validation import validate_event

# Countries for logins, with a plausible city; the event's geo is given, so no IP lookup decides it.
PLACES = [("US", "Chicago"), ("GB", "London"), ("DE", "Berlin"), ("FR", "Lyon"), ("BR", "Sao Paulo"),
          ("NG", "Lagos"), ("RU", "Moscow"), ("VN", "Hanoi"), ("IN", "Pune"), ("AU", "Perth")]  # fmt: skip
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
]
APPS = [("Mail Sync Pro", ["mail.read", "contacts.read", "offline_access"]), ("Budget Buddy", ["accounts.read"]),
        ("QuickPay Connect", ["payments.write", "accounts.read"])]  # fmt: skip


class _Scenarios:
    """Event sequences that raise each kind of alert. Each method returns the events' raw bodies."""

    def __init__(self, rng: random.Random, tenant_slug: str):
        self.rng, self.slug, self.n = rng, tenant_slug, 0

    def _event(self, account: dict, type_: str, at: datetime, **context) -> dict:
        self.n += 1
        return {"id": f"demo-{self.slug}-{self.n}", "type": type_, "occurred_at": at.isoformat(),
                "account": account, "context": context}  # fmt: skip

    def _login(self, account, at, place, device, agent=None) -> dict:
        country, city = place
        return self._event(
            account, "login.succeeded", at, method="password", device_id=device,
            user_agent=agent or self.rng.choice(AGENTS), geo={"country": country, "city": city},
        )  # fmt: skip

    def new_device(self, account, at):
        return [self._login(account, at - timedelta(days=3), PLACES[0], "phone-1"),
                self._login(account, at, PLACES[0], f"laptop-{self.n}")]  # fmt: skip

    def new_country(self, account, at):
        far = self.rng.choice(PLACES[4:])
        return [self._login(account, at - timedelta(days=2), PLACES[1], "phone-1"),
                self._login(account, at, far, "phone-1")]  # fmt: skip

    def brute_force(self, account, at):
        return [self._event(account, "login.failed", at + timedelta(seconds=20 * i), reason="bad_password")
                for i in range(self.rng.randint(5, 9))]  # fmt: skip

    def password(self, account, at):
        return [self._event(account, "password.changed", at, initiated_by=self.rng.choice(["user", "reset_flow"]))]

    def mfa_off(self, account, at):
        return [self._event(account, "mfa.disabled", at, factor=self.rng.choice(["totp", "sms"]))]

    def recovery(self, account, at):
        return [self._event(account, "profile.changed", at - timedelta(minutes=30), fields=["email"]),
                self._event(account, "recovery.completed", at, channel="email")]  # fmt: skip

    def third_party(self, account, at):
        name, scopes = self.rng.choice(APPS)
        return [self._event(account, "third_party.authorized", at, app_name=name, scopes=scopes)]

    def takeover(self, account, at):
        return [self._login(account, at - timedelta(days=4), PLACES[0], "phone-1"),
                self._login(account, at, self.rng.choice(PLACES[5:]), f"unknown-{self.n}"),
                self._event(account, "password.changed", at + timedelta(minutes=4), initiated_by="reset_flow"),
                self._event(account, "mfa.disabled", at + timedelta(minutes=9), factor="totp")]  # fmt: skip

    ALL = ("new_device", "new_country", "brute_force", "password", "mfa_off", "recovery", "third_party", "takeover")
    WEIGHTS = (5, 4, 3, 3, 2, 2, 2, 1)


def demo_alerts_seed(*, tenant, target: int = 150, seed: int = 7) -> int:
    """Raise about `target` alerts for `tenant` through the real pipeline, unless it has that many
    already (idempotent). Returns how many alerts it raised."""
    have = Alert.objects.filter(tenant=tenant).count()
    if have >= target:
        return 0
    rng = random.Random(f"{seed}:{tenant.slug}")  # noqa: S311 (demo data, not security)
    scenarios = _Scenarios(rng, tenant.slug)
    real_now = timezone.now()
    customers = 0
    # Older half: processed as of six hours ago, so their first-response clocks have run out.
    for processed_at, share in ((real_now - timedelta(hours=6), 0.4), (real_now, 0.6)):
        raws = []
        for _ in range(int((target - have) * share)):
            customers += 1
            account = {
                "external_id": f"{tenant.slug[:4]}-{customers:05d}",
                "email": f"customer{customers}@{tenant.slug}.example",
                "phone": f"+1415555{customers:04d}",
                "display_name": f"Customer {customers}",
                "channels": {"email": True, "sms": rng.random() < 0.7, "push": rng.random() < 0.5},
            }
            name = rng.choices(_Scenarios.ALL, weights=_Scenarios.WEIGHTS)[0]
            at = processed_at - timedelta(minutes=rng.randint(5, 300))
            raws += getattr(scenarios, name)(account, at)
        raws.sort(key=lambda raw: raw["occurred_at"])
        with transaction.atomic():  # detection runs here, as of `processed_at`; the queued task finds it done
            for start in range(0, len(raws), 500):
                events = [validate_event(raw, now=real_now) for raw in raws[start : start + 500]]
                _, _, ids = events_ingest(tenant=tenant, events=events, key_prefix="demo")
                events_process(event_ids=ids, now=processed_at)
    return Alert.objects.filter(tenant=tenant).count() - have


def demo_cases_seed(*, tenant, count: int = 4) -> int:
    """Open `count` cases of `tenant` the way customers open them: answering "No, it wasn't me" to an
    alert of theirs (alerts.signals.alert_disowned), in the default queue's alerts. Idempotent: a
    tenant with cases gets none. Returns how many it opened."""
    from alerts.signals import alert_disowned
    from desk.models import Case

    if Case.objects.filter(tenant=tenant).exists():
        return 0
    alerts = Alert.objects.filter(tenant=tenant, customer__isnull=False, type__in=["login", "location", "password"])
    customers: set[int] = set()
    for alert in alerts.order_by("id").iterator():
        if len(customers) == count:
            break
        if alert.customer_id in customers:
            continue
        customers.add(alert.customer_id)
        with transaction.atomic():
            alert_disowned.send(sender=Alert, alert_id=alert.pk)
    return len(customers)


# Customers with nothing against them, for trying the customer loop by hand (README, "Try the
# whole loop"): every channel opted into, one ordinary login from their phone days ago, no alert. A
# demo customer with an active alert would only fold a new login into it, and a fold tells nobody.
TRY_CUSTOMERS = 3


def demo_try_customer_ids(tenant) -> list[str]:
    return [f"{tenant.slug.split('-')[0]}-try-{n}" for n in range(1, TRY_CUSTOMERS + 1)]


def demo_try_customers_seed(*, tenant) -> int:
    """The tenant's try customers, through the real pipeline (idempotent). Returns how many it made."""
    from alerts.models import Customer

    have = set(Customer.objects.filter(tenant=tenant).values_list("external_id", flat=True))
    at = timezone.now() - timedelta(days=3)
    raws = []
    for n, external_id in enumerate(demo_try_customer_ids(tenant), start=1):
        if external_id in have:
            continue
        account = {
            "external_id": external_id,
            "email": f"{external_id}@{tenant.slug}.example",
            "phone": f"+1415555{9000 + n:04d}",
            "display_name": f"Try customer {n}",
            "channels": {"email": True, "sms": True, "push": True},
        }
        raws.append(
            {"id": f"demo-{external_id}-home", "type": "login.succeeded", "occurred_at": at.isoformat(),
             "account": account, "context": {"method": "password", "device_id": "phone-1", "user_agent": AGENTS[3],
                                             "geo": {"country": PLACES[0][0], "city": PLACES[0][1]}}}
        )  # fmt: skip
    if raws:
        with transaction.atomic():
            events = [validate_event(raw, now=timezone.now()) for raw in raws]
            _, _, ids = events_ingest(tenant=tenant, events=events, key_prefix="demo")
            events_process(event_ids=ids, now=timezone.now())
    return len(raws)
