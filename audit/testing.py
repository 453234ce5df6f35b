"""Test support: let the test runner empty the audit tables between transactional tests.

Django flushes the test database with TRUNCATE (PostgreSQL) or DELETE (SQLite), which the
append-only triggers refuse, as they should. For the test database only, the flush lifts the
triggers and restores them inside its own transaction.
"""

from django.db import connections

from audit import triggers


def allow_test_flush() -> None:
    for connection in connections.all():
        ops = connection.ops
        if getattr(ops, "_audit_flush_wrapped", False):
            continue
        original = ops.execute_sql_flush

        def execute_sql_flush(sql_list, _original=original, _connection=connection):
            from django.db import transaction

            with transaction.atomic(using=_connection.alias, savepoint=_connection.features.can_rollback_ddl):
                triggers.suspend(_connection)
                _original(sql_list)
                triggers.restore(_connection)

        ops.execute_sql_flush = execute_sql_flush
        ops._audit_flush_wrapped = True
