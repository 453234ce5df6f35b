"""Database triggers that make the audit tables append-only, on PostgreSQL and SQLite.

UPDATE and DELETE are refused row by row; on PostgreSQL TRUNCATE too (a row trigger does not see
it). Only the archive procedure lifts them, inside its own transaction, as the table owner.
"""

APPEND_ONLY_TABLES = ("audit_auditevent", "audit_auditseal", "audit_auditcheckpoint", "audit_auditarchive")
MESSAGE = "the audit trail is append-only"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE}: % on % refused', TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def _pg_install(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()",
    ]


def _sqlite_install(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: UPDATE on {table} refused'); END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: DELETE on {table} refused'); END",
    ]


def install(connection, tables=APPEND_ONLY_TABLES) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_PG_FUNCTION)
            statements = [s for t in tables for s in _pg_install(t)]
        elif connection.vendor == "sqlite":
            statements = [s for t in tables for s in _sqlite_install(t)]
        else:
            raise NotImplementedError(f"append-only triggers for {connection.vendor}")
        for statement in statements:
            cursor.execute(statement)


def suspend(connection, tables=APPEND_ONLY_TABLES) -> None:
    """Lift the triggers. Only for the archive procedure (and test-database flushes); on
    PostgreSQL it needs the table owner and holds an exclusive lock until the transaction ends."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # ALTER TABLE refuses while deferred foreign-key checks are pending: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in tables:
            if connection.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            else:
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")


def restore(connection, tables=APPEND_ONLY_TABLES) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    else:
        install(connection, tables)
