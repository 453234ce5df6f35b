"""Production grants: the application's role may INSERT and SELECT audit rows, nothing more."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.models import Action
from audit.services import audit_record

ROLE = "alertdesk_app_grants_test"


@pytest.mark.services
@pytest.mark.django_db
def test_the_application_role_can_add_and_read_but_not_change_the_trail(tenant_a):
    audit_record(action=Action.VIEW, tenant=tenant_a, target_type="t", target_id="1")
    with connection.cursor() as cursor:
        cursor.execute(f"DO $$ BEGIN CREATE ROLE {ROLE} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    call_command("audit_grants", ROLE, "--apply", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"SET ROLE {ROLE}")
        try:
            cursor.execute("SELECT count(*) FROM audit_auditevent")
            assert cursor.fetchone()[0] >= 1
            cursor.execute(
                "INSERT INTO audit_auditevent (occurred_at, actor_label, actor_role, action, origin, target_type,"
                " target_id, target_label, changes, reason, metadata, request_id, user_agent)"
                " VALUES (now(), '', '', 'view', 'system', 't', '2', '', '{}', '', '{}', '', '')"
            )
            for statement in ("UPDATE audit_auditevent SET reason = 'x'", "DELETE FROM audit_auditevent",
                              "TRUNCATE audit_auditevent", "UPDATE audit_auditseal SET hash = ''"):  # fmt: skip
                with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
                    cursor.execute(statement)
        finally:
            cursor.execute("RESET ROLE")


@pytest.mark.django_db
def test_grants_print_without_applying(db):
    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="PostgreSQL"):
            call_command("audit_grants", ROLE)
        return
    out = io.StringIO()
    call_command("audit_grants", ROLE, stdout=out)
    tables = "audit_auditevent, audit_auditseal, audit_auditcheckpoint, audit_auditarchive"
    assert f'GRANT SELECT, INSERT ON {tables} TO "{ROLE}"' in out.getvalue()
