from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from audit.triggers import APPEND_ONLY_TABLES

SEALER_STATE_TABLES = ("audit_auditchainhead", "audit_auditsealerstate")


def grant_statements(role: str) -> list[str]:
    """The application's database role may add to and read the trail, nothing more. Every other
    table keeps whatever the role already has."""
    quoted = connection.ops.quote_name(role)
    tables = ", ".join(APPEND_ONLY_TABLES)
    statements = [
        f"REVOKE ALL ON {tables} FROM {quoted}",
        f"GRANT SELECT, INSERT ON {tables} TO {quoted}",
        # The sealer's bookkeeping (derived state, not the record) moves forward.
        f"GRANT SELECT, INSERT, UPDATE ON {', '.join(SEALER_STATE_TABLES)} TO {quoted}",
    ]
    for table in ("audit_auditevent", "audit_auditcheckpoint", "audit_auditarchive"):  # tables with an id sequence
        statements.append(
            f"DO $$ DECLARE s text := pg_get_serial_sequence('{table}', 'id'); BEGIN "
            f"IF s IS NOT NULL THEN EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO {quoted}', s); END IF; END $$"
        )
    return statements


class Command(BaseCommand):
    help = (
        "Print (or apply with --apply) the PostgreSQL grants that leave the application's role INSERT and "
        "SELECT on the audit tables and nothing more. Run as the tables' owner; archiving runs as the owner."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="the database role the web and worker processes connect as")
        parser.add_argument("--apply", action="store_true")

    def handle(self, *args, role, apply, **options):
        if connection.vendor != "postgresql":
            raise CommandError("Grants are for PostgreSQL; SQLite has no roles (its triggers still hold).")
        statements = grant_statements(role)
        if apply:
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
            self.stdout.write(self.style.SUCCESS(f"Applied {len(statements)} statements for role {role}."))
        else:
            self.stdout.write(";\n".join(statements) + ";")
