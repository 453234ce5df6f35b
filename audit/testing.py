"""Test support: let the test runner empty the audit tables between transactional tests.

Django flushes the test database with TRUNCATE (PostgreSQL) or DELETE (SQLite), which the
append-only triggers refuse, as they should. For test runs only, the flush lifts the triggers
and restores them inside its own transaction. The backend's operations class is patched, not one
connection, because the live server's thread may flush through another connection object.
"""

from django.db import connections, transaction

from audit import triggers


def allow_test_flush() -> None:
    for connection in connections.all():
        ops_class = type(connection.ops)
        if getattr(ops_class, "_audit_flush_wrapped", False):
            continue
        original = ops_class.execute_sql_flush

        def execute_sql_flush(self, sql_list, _original=original):
            with transaction.atomic(using=self.connection.alias, savepoint=self.connection.features.can_rollback_ddl):
                triggers.suspend(self.connection)
                _original(self, sql_list)
                triggers.restore(self.connection)

        ops_class.execute_sql_flush = execute_sql_flush
        ops_class._audit_flush_wrapped = True
