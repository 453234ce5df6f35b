"""A deployment check: the append-only triggers and the grants hold only against a role that
neither owns the audit tables nor is a superuser. The owner can `ALTER TABLE ... DISABLE TRIGGER`
and a superuser can `SET session_replication_role = replica`; either then rewrites the trail at
will (the keyed seals still show it, but the record is lost)."""

from django.core import checks
from django.db import DatabaseError, connections

from audit.triggers import APPEND_ONLY_TABLES

_ROLE_FACTS = """
SELECT r.rolsuper,
       ARRAY(SELECT c.relname::text FROM pg_class c
             WHERE c.oid = ANY(ARRAY(SELECT to_regclass(t) FROM unnest(%s::text[]) AS t))
               AND pg_has_role(current_user, c.relowner, 'MEMBER')
             ORDER BY c.relname)
FROM pg_roles r WHERE r.rolname = current_user
"""


def database_role_facts(connection) -> tuple[bool, list[str]] | None:
    """(is the role a superuser, the audit tables it owns or may act as owner of), or None when
    this is not PostgreSQL or the database cannot be reached."""
    if connection.vendor != "postgresql":
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute(_ROLE_FACTS, [list(APPEND_ONLY_TABLES)])
            row = cursor.fetchone()
    except DatabaseError:
        return None  # no database at build time: nothing to say about its role
    if row is None:
        return None
    return bool(row[0]), list(row[1])


@checks.register(checks.Tags.security, deploy=True)
def audit_database_role_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    facts = database_role_facts(connections["default"])
    if facts is None:
        return []
    superuser, owned = facts
    problems = []
    if superuser:
        problems.append(
            checks.Warning(
                "The application connects to PostgreSQL as a superuser: it can lift the audit trail's "
                "append-only triggers (SET session_replication_role = replica).",
                hint="Connect as a role that is neither superuser nor owner of the audit tables, with the "
                "grants of `manage.py audit_grants ROLE`; run migrations and audit_archive as the owner.",
                id="audit.W001",
            )
        )
    if owned:
        problems.append(
            checks.Warning(
                f"The application's database role owns the audit tables ({', '.join(owned)}): it can "
                "disable their append-only triggers (ALTER TABLE ... DISABLE TRIGGER).",
                hint="Let another role own the tables (the one that runs migrations) and connect the "
                "application with the grants of `manage.py audit_grants ROLE`.",
                id="audit.W002",
            )
        )
    return problems
