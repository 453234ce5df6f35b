from django.core.management.base import BaseCommand, CommandError

from accounts.models import Tenant
from audit.services import audit_seal
from audit.verify import chains_present, verify_chain


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chains and report the first broken link. Exit code 0 when every "
        "chain is intact, 1 when one is not."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="one tenant's chain (default: every chain)")
        parser.add_argument(
            "--global", dest="global_chain", action="store_true", help="the chain of events without a tenant"
        )
        parser.add_argument("--no-seal", action="store_true", help="do not seal pending events first")
        parser.add_argument("--archive", metavar="FILE", help="verify an archive file instead of the database chains")

    def handle(self, *args, tenant=None, global_chain=False, no_seal=False, archive=None, **options):
        if archive:
            return self._archive(archive)
        if not no_seal:
            while audit_seal():
                pass
        if tenant:
            found = Tenant.objects.filter(slug=tenant).first()
            if found is None:
                raise CommandError(f"No such tenant: {tenant}.")
            chains = [found.pk]
        elif global_chain:
            chains = [0]
        else:
            chains = chains_present()
        names = dict(Tenant.objects.filter(pk__in=chains).values_list("pk", "slug"))
        broken = 0
        for chain in chains:
            report = verify_chain(chain)
            name = names.get(chain, "(no tenant)") if chain else "(no tenant)"
            if report.intact:
                self.stdout.write(
                    f"chain {chain} {name}: intact, {report.checked} events (#{report.first_seq}-#{report.last_seq})"
                )
            else:
                broken += 1
                self.stdout.write(self.style.ERROR(f"chain {chain} {name}: BROKEN at {report.problems[0]}"))
        if broken:
            self.stderr.write(self.style.ERROR(f"{broken} of {len(chains)} chains broken."))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(f"All {len(chains)} chains intact."))

    def _archive(self, path):
        from pathlib import Path

        from audit.archive import archive_file_verify

        if not Path(path).is_file():
            raise CommandError(f"No such file: {path}.")
        problems = archive_file_verify(Path(path))
        if problems:
            self.stdout.write(self.style.ERROR(f"{path}: BROKEN: {problems[0]}"))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(f"{path}: intact."))
