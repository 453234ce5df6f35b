"""config.bulk: statements built from model metadata, values prepared as the fields would."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import connection

from accounts.services import tenant_create
from alerts.models import AccountEvent, Alert, Customer, CustomerState
from audit.models import AuditEvent
from config.bulk import BulkInsert, BulkUpdate

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_an_unknown_or_renamed_field_fails_when_the_statement_is_built():
    with pytest.raises(FieldDoesNotExist):
        BulkUpdate(Customer, fields=["email", "contact_digest"])  # the field is contact_digests
    with pytest.raises(FieldDoesNotExist):
        BulkUpdate(Customer, fields=["email"], key="customer_id")
    with pytest.raises(FieldDoesNotExist):
        BulkInsert(AccountEvent, fields=["tenant", "external_id"], conflict=["tenant", "external"])
    with pytest.raises(FieldDoesNotExist):
        BulkInsert(AuditEvent, returning=["ident"])


def test_fields_that_are_no_column_are_refused():
    with pytest.raises(ValueError, match="not a column"):
        BulkUpdate(Alert, fields=["evidence"])  # many-to-many
    with pytest.raises(ValueError, match="not a column"):
        BulkUpdate(Customer, fields=["events"])  # reverse relation
    with pytest.raises(ValueError, match="twice"):
        BulkUpdate(Customer, fields=["tenant", "tenant_id"])
    with pytest.raises(ValueError, match="the key"):
        BulkUpdate(Customer, fields=["email", "id"])
    with pytest.raises(ValueError, match="shared"):
        BulkInsert(AccountEvent, fields=["customer", "external_id"], shared=["tenant"])


def test_update_names_the_model_columns():
    update = BulkUpdate(CustomerState, fields=["devices", "updated_at"], key="customer")
    assert update.sql(connection) == (
        'UPDATE "alerts_customerstate" SET "devices" = %s, "updated_at" = %s WHERE "customer_id" = %s'
    )
    # A foreign key by its field name writes its column.
    assert 'SET "tenant_id" = %s' in BulkUpdate(Customer, fields=["tenant"]).sql(connection)


def test_insert_defaults_to_every_concrete_column_but_the_automatic_key():
    insert = BulkInsert(AuditEvent)
    columns = [f.column for f in AuditEvent._meta.concrete_fields if f.name != "id"]
    assert [f.column for f in insert.fields] == columns
    assert "user_agent" in columns and "tenant_id" in columns
    sql = insert.sql(connection)
    quoted = ", ".join(f'"{c}"' for c in columns)
    assert sql.startswith(f'INSERT INTO "audit_auditevent" ({quoted}) VALUES (')
    assert sql.count("%s") == len(columns)
    assert sql.endswith(' RETURNING "id"')


@pytest.mark.django_db
def test_update_encrypts_encrypted_fields_and_stores_json_as_json(tenant_a):
    customer = Customer.objects.create(
        tenant=tenant_a, external_id="c1", email="old@example.com", created_at=NOW, updated_at=NOW
    )
    customer.email, customer.channels, customer.updated_at = "new@example.com", {"sms": True}, NOW + timedelta(1)
    BulkUpdate(Customer, fields=["email", "channels", "updated_at"]).execute([customer])
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM alerts_customer WHERE id = %s", [customer.pk])
        (stored,) = cursor.fetchone()
    assert stored and "new@example.com" not in stored  # ciphertext
    again = Customer.objects.get(pk=customer.pk)
    assert (again.email, again.channels, again.updated_at) == ("new@example.com", {"sms": True}, NOW + timedelta(1))
    assert Customer.objects.filter(channels__sms=True).count() == 1  # a JSON object, not a JSON string


@pytest.mark.django_db
def test_update_by_a_foreign_key_primary_key(tenant_a):
    customers = [
        Customer.objects.create(tenant=tenant_a, external_id=f"c{i}", created_at=NOW, updated_at=NOW) for i in range(3)
    ]
    states = [CustomerState.objects.create(customer=c, updated_at=NOW) for c in customers]
    for i, state in enumerate(states):
        state.devices, state.last_login = [f"dev-{i}"], {"country": "NL"}
    BulkUpdate(CustomerState, fields=["devices", "last_login"], key="customer").execute(states[:2])
    assert [(s.devices, s.last_login) for s in CustomerState.objects.order_by("customer_id")] == [
        (["dev-0"], {"country": "NL"}), (["dev-1"], {"country": "NL"}), ([], {}),
    ]  # fmt: skip


def _event_insert(**options) -> BulkInsert:
    return BulkInsert(
        AccountEvent,
        fields=["tenant", "customer", "external_id", "type", "occurred_at", "received_at", "ip", "context"],
        shared=["tenant", "received_at"],
        conflict=["tenant", "external_id"],
        returning=["id", "external_id"],
        **options,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("options", [{"arrays": True}, {"batch": 2}], ids=["arrays", "values"])
def test_insert_skips_conflicts_and_returns_the_stored_rows(tenant_a, options):
    insert = _event_insert(**options)
    customer = Customer.objects.create(tenant=tenant_a, external_id="c1", created_at=NOW, updated_at=NOW)

    def row(external_id, ip="81.2.3.4"):
        return (customer.pk, external_id, "login.succeeded", NOW, ip, {"device_id": "dev-1", "n": [1, 2]})

    first = insert.execute([row("e1"), row("e2", ip=None)], shared={"tenant": tenant_a.pk, "received_at": NOW})
    assert sorted(x for _, x in first) == ["e1", "e2"]
    second = insert.execute(
        [row("e2"), row("e3"), row("e4"), row("e5"), row("e6")], shared={"tenant": tenant_a.pk, "received_at": NOW}
    )
    assert sorted(x for _, x in second) == ["e3", "e4", "e5", "e6"]  # e2 was there: skipped
    stored = {e.external_id: e for e in AccountEvent.objects.filter(tenant=tenant_a)}
    assert {pk for pk, _ in first + second} == {e.pk for e in stored.values()}
    assert stored["e1"].context == {"device_id": "dev-1", "n": [1, 2]}
    assert (stored["e1"].ip, stored["e2"].ip) == ("81.2.3.4", None)
    assert (stored["e3"].tenant_id, stored["e3"].received_at, stored["e3"].occurred_at) == (tenant_a.pk, NOW, NOW)
    assert AccountEvent.objects.filter(context__device_id="dev-1").count() == 6  # JSON objects


@pytest.mark.django_db
def test_insert_wants_every_shared_value(tenant_a):
    with pytest.raises(ValueError, match="shared"):
        _event_insert(arrays=True).execute([(1, "e1", "login.succeeded", NOW, None, {})], shared={"tenant": 1})


@pytest.mark.django_db
@pytest.mark.parametrize("count", [1, 3])
def test_insert_of_model_instances_returns_their_ids(count):
    tenant = tenant_create(slug="bulk", name="Bulk")
    insert = BulkInsert(AuditEvent, returning=["id"])
    events = [
        AuditEvent(occurred_at=NOW, tenant=tenant, action="view", origin="web", target_id=str(i),
                   changes={"a": {"before": 1, "after": 2}}, ip="10.0.0.1")
        for i in range(count)
    ]  # fmt: skip
    ids = [pk for (pk,) in insert.execute([insert.values_of(e) for e in events])]
    assert len(set(ids)) == count
    stored = {e.pk: e for e in AuditEvent.objects.filter(pk__in=ids)}
    assert [stored[pk].target_id for pk in ids] == [str(i) for i in range(count)]
    assert all(stored[pk].changes == {"a": {"before": 1, "after": 2}} for pk in ids)
    assert all(stored[pk].ip == "10.0.0.1" and stored[pk].tenant_id == tenant.pk for pk in ids)
