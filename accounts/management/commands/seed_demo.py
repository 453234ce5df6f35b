from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.demo import demo_password, seed_demo


class Command(BaseCommand):
    help = "Load the demo tenants and staff (idempotent). Development only."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("seed_demo refuses to run in production.")
        password = demo_password()
        logins = seed_demo(password)
        out = self.stdout.write
        out(self.style.SUCCESS(f"Demo data ready. Sign in at {settings.NOTIFICATION_PUBLIC_URL or ''}/"))
        out(f"Password for every demo user: {password}")
        out("Second step: add the TOTP secret to an authenticator app, or print the current code with")
        out("  make totp U=<username>      or use one of the backup codes (each works once).")
        out("")
        out(f"{'username':<14} {'role':<11} {'tenants':<28} {'TOTP secret':<34} backup codes")
        for login in logins:
            tenants = ", ".join(login.tenants) or "all (BPO admin)"
            codes = " ".join(login.backup_codes)
            out(f"{login.username:<14} {login.role:<11} {tenants:<28} {login.totp_secret:<34} {codes}")
