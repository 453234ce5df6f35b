"""Demo data for `make run`: two client tenants and a small staff, pre-enrolled in MFA.

Development only. The demo password is random, made on first use and kept in a git-ignored file,
so no credential lives in the code and re-seeding does not change it.
"""

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import Role, Tenant, User

DEMO_TENANTS = [("acme-bank", "Acme Bank"), ("globex-telecom", "Globex Telecom")]
# username, role, tenant slugs (none: BPO-wide admin)
DEMO_STAFF = [
    ("admin", Role.ADMIN, []),
    ("supervisor", Role.SUPERVISOR, ["acme-bank", "globex-telecom"]),
    ("agent.acme", Role.AGENT, ["acme-bank"]),
    ("agent.globex", Role.AGENT, ["globex-telecom"]),
    ("agent.both", Role.AGENT, ["acme-bank", "globex-telecom"]),
]
# Each demo tenant's extra queue, beside its default one: slug, name, alert types, minimum severity.
DEMO_QUEUE = ("takeover", "Takeover and recovery", ["account_takeover", "recovery"], 3)


@dataclass
class DemoLogin:
    username: str
    role: str
    tenants: list[str]
    totp_secret: str
    backup_codes: list[str]


def demo_password() -> str:
    path = Path(settings.BASE_DIR) / ".demo-password"
    if not path.exists():
        path.write_text(f"demo-{secrets.token_urlsafe(12)}")
        path.chmod(0o600)
    return path.read_text().strip()


def totp_secret_base32(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def totp_now(device: TOTPDevice) -> str:
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
    return str(code).zfill(device.digits)


@transaction.atomic
def seed_demo(password: str) -> list[DemoLogin]:
    tenants = {}
    for slug, name in DEMO_TENANTS:
        tenant = Tenant.objects.filter(slug=slug).first() or services.tenant_create(slug=slug, name=name)
        tenants[slug] = tenant
    logins = []
    for username, role, slugs in DEMO_STAFF:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = services.user_create(
                username=username, password=password, email=f"{username}@alertdesk.invalid", is_bpo_admin=not slugs
            )
        elif not user.check_password(password):
            services.user_set_password(user=user, password=password)
        for slug in slugs:
            services.membership_set(user=user, tenant=tenants[slug], role=role)
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
        codes = list(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
        if len(codes) < 3:
            codes = services.mfa_backup_codes_regenerate(user=user)
        logins.append(DemoLogin(username, role, slugs, totp_secret_base32(device), codes[:3]))
    _seed_queues(tenants)
    _seed_alerts(tenants)
    _seed_message_settings(tenants)
    return logins


def _seed_alerts(tenants: dict[str, Tenant]) -> None:
    """Hundreds of alerts per demo tenant, raised by the real pipeline (desk.demo), a few cases
    opened by customers' "No, it wasn't me", and customers with no alert to try the loop on; idempotent."""
    from desk.demo import demo_alerts_seed, demo_cases_seed, demo_try_customers_seed

    for tenant in tenants.values():
        demo_alerts_seed(tenant=tenant)
        demo_cases_seed(tenant=tenant)
        demo_try_customers_seed(tenant=tenant)


def _seed_queues(tenants: dict[str, Tenant]) -> None:
    """Each demo tenant's extra queue, and its default queue granted to its agents. Demo tooling,
    not the identity domain: it may reach the desk (accounts' services and models never import it)."""
    from desk.models import Queue
    from desk.services import queue_create, queue_grant_default

    slug, name, types, severity = DEMO_QUEUE
    for tenant in tenants.values():
        if not Queue.objects.filter(tenant=tenant, slug=slug).exists():
            queue_create(tenant=tenant, slug=slug, name=name, alert_types=types, min_severity=severity)
    for username, role, slugs in DEMO_STAFF:
        if role == Role.AGENT:
            user = User.objects.get(username=username)
            for tenant_slug in slugs:
                queue_grant_default(tenant=tenants[tenant_slug], user=user)


# How the demo tenants' customer messages name them and where they send customers (reserved
# .example domains; +44 20 7946 0xxx is a range set aside for drama).
DEMO_MESSAGE_SETTINGS = {
    "acme-bank": ("acme-bank.example", "+44 20 7946 0000", "Europe/London", "en"),
    "globex-telecom": ("globex-telecom.example", "+44 20 7946 0999", "Europe/Paris", "fr"),
}


def _seed_message_settings(tenants: dict[str, Tenant]) -> None:
    from alerts.models import MessageSettings
    from alerts.notifications.template_services import message_settings_save

    for slug, (domain, phone, zone, locale) in DEMO_MESSAGE_SETTINGS.items():
        tenant = tenants[slug]
        if not MessageSettings.objects.filter(tenant=tenant).exists():
            message_settings_save(
                tenant=tenant,
                actor=None,
                display_name=tenant.name,
                official_domain=domain,
                support_phone=phone,
                support_url=f"https://{domain}/help",
                time_zone=zone,
                default_locale=locale,
            )
