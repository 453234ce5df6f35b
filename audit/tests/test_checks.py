"""The deployment check that warns when the application's database role could lift the
append-only triggers: a superuser, or the owner of the audit tables."""

import io

import pytest
from django.core.management import call_command
from django.db import connection

from audit import checks as audit_checks


def ids(messages):
    return sorted(message.id for message in messages)


@pytest.mark.parametrize("facts, expected", [
    ((True, []), ["audit.W001"]),
    ((False, ["audit_auditevent", "audit_auditseal"]), ["audit.W002"]),
    ((True, ["audit_auditevent"]), ["audit.W001", "audit.W002"]),
    ((False, []), []),
    (None, []),  # not PostgreSQL, or no database to ask
])  # fmt: skip
def test_the_check_warns_for_a_superuser_or_an_owner(monkeypatch, facts, expected):
    monkeypatch.setattr(audit_checks, "database_role_facts", lambda connection: facts)
    assert ids(audit_checks.audit_database_role_check()) == expected


def test_it_is_a_deployment_check(monkeypatch):
    from django.core.checks import registry

    monkeypatch.setattr(audit_checks, "database_role_facts", lambda connection: (True, []))
    assert audit_checks.audit_database_role_check in registry.registry.get_checks(include_deployment_checks=True)
    assert audit_checks.audit_database_role_check not in registry.registry.get_checks(include_deployment_checks=False)


@pytest.mark.django_db
def test_on_postgresql_the_test_role_is_reported(db):
    if connection.vendor != "postgresql":
        assert audit_checks.database_role_facts(connection) is None
        return
    superuser, owned = audit_checks.database_role_facts(connection)
    assert superuser  # the test database is made by a superuser, which also owns the tables
    assert {"audit_auditevent", "audit_auditseal"} <= set(owned)
    out = io.StringIO()
    call_command("check", "--deploy", stdout=out, stderr=out)
    assert "audit.W001" in out.getvalue() and "audit.W002" in out.getvalue()
