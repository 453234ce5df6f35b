"""Bulk statements built from model metadata, for the hot paths where the ORM's bulk methods cost
too much (`bulk_update` writes a CASE per field per row; `bulk_create` rebuilds its statement,
with a placeholder per value, for every batch size).

Statements are made once, at import, from `Model._meta`: table and column names come from the
fields, so a renamed or removed field fails at import (every test run), not on the first batch in
production. Values go through each field's `get_db_prep_save`, as the ORM's would: encrypted
fields are encrypted, JSON is adapted as JSON, foreign keys and datetimes as their columns want.

    _UPDATE = BulkUpdate(Alert, fields=["count", "severity", "updated_at"])
    _UPDATE.execute(alerts)  # one UPDATE ... WHERE id = %s, run with executemany

    _INSERT = BulkInsert(AccountEvent, fields=[...], shared=["tenant"], conflict=["tenant", "external_id"],
                         returning=["id", "external_id"], arrays=True)
    _INSERT.execute(rows, shared={"tenant": tenant_id})  # [(id, external_id), ...] of the stored rows

On PostgreSQL, a few stock field types skip `get_db_prep_save`, whose work there is only to check
a value the driver takes as it is (a str for a CharField, an int for an integer or a foreign key,
an aware datetime): at tens of rows per batch and eight columns a row, those calls were a third of
an ingest batch's insert. Give such fields values of the right Python type. JSON without a custom
encoder travels as its `json.dumps` text, cast to the column's type in SQL. Subclasses (say, an
encrypted text field) and every other type always go through their field.

Knows nothing of the project's apps: it takes models as arguments.
"""

import json
import time
from collections.abc import Callable, Iterable, Sequence

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db import connection as default_connection
from django.db.models import Field, Model
from django.db.models.fields import AutoFieldMixin

# Exact classes, not subclasses: a subclass may change what its values become.
_AS_THEY_ARE = frozenset(
    {
        models.CharField, models.TextField, models.BooleanField, models.DateTimeField, models.IntegerField,
        models.BigIntegerField, models.SmallIntegerField, models.PositiveIntegerField,
        models.PositiveBigIntegerField, models.PositiveSmallIntegerField, models.AutoField, models.BigAutoField,
        models.SmallAutoField,
    }
)  # fmt: skip


def _driver_value(field: Field, connection) -> tuple[Callable, str | None]:
    """How one field's values are made ready for the driver on this connection: a function, and
    the SQL type they travel as when it is not the column's own (None)."""
    if connection.vendor == "postgresql":
        kind = type(field)
        if kind in (models.ForeignKey, models.OneToOneField):
            target = field.target_field
            if type(target) in _AS_THEY_ARE:
                return _same, None
        elif kind in _AS_THEY_ARE:
            return _same, None
        elif kind is models.GenericIPAddressField:
            return _or_none, None
        elif kind is models.JSONField and field.encoder is None:
            return _json_text, "text"

    # The connection is only asked for its vendor's adaptations (ops, features), which are the
    # same on every connection of the vendor: a preparer made on one thread serves the others.
    def prepare(value, field=field, connection=connection):
        return field.get_db_prep_save(value, connection)

    return prepare, None


def _same(value):
    return value


def _or_none(value):
    return value or None


def _json_text(value):
    return None if value is None else json.dumps(value)


def _field(model: type[Model], name: str) -> Field:
    """The concrete column field called `name` ("pk", a field name or a foreign key's attname);
    FieldDoesNotExist for a field the model does not have."""
    meta = model._meta
    field = meta.pk if name == "pk" else meta.get_field(name)
    if not getattr(field, "concrete", False) or field.many_to_many or field.column is None:
        raise ValueError(f"{meta.label}.{name} is not a column of {meta.db_table}")
    return field


def _resolved(connection):
    """The connection itself, not Django's `connection` proxy: each attribute read through the
    proxy looks the connection up again (a context-local), a few microseconds every time."""
    return connections[DEFAULT_DB_ALIAS] if connection is default_connection else connection


def _preparers(fields: Sequence[Field], connection) -> tuple[Callable, ...]:
    return tuple(_driver_value(f, connection)[0] for f in fields)


def _fields(model: type[Model], names: Iterable[str]) -> tuple[Field, ...]:
    fields = tuple(_field(model, name) for name in names)
    if len({f.column for f in fields}) != len(fields):
        raise ValueError(f"a column appears twice in {[f.name for f in fields]}")
    return fields


class BulkUpdate:
    """`UPDATE table SET col = %s, ... WHERE key = %s`, one statement text run with executemany
    over many objects on Django's cursor (psycopg pipelines the rows: one round trip)."""

    def __init__(self, model: type[Model], *, fields: Sequence[str], key: str = "pk"):
        self.model = model
        self.fields = _fields(model, fields)
        self.key = _field(model, key)
        if not self.fields:
            raise ValueError("nothing to update")
        if self.key.column in {f.column for f in self.fields}:
            raise ValueError(f"{self.key.name} is the key: it cannot be updated too")
        self._sql: dict[str, str] = {}
        self._prep: dict[str, tuple] = {}

    def sql(self, connection=default_connection) -> str:
        if (sql := self._sql.get(connection.vendor)) is None:
            qn = connection.ops.quote_name
            sets = ", ".join(f"{qn(f.column)} = %s" for f in self.fields)
            sql = self._sql[connection.vendor] = (
                f"UPDATE {qn(self.model._meta.db_table)} SET {sets} WHERE {qn(self.key.column)} = %s"  # noqa: S608 (names from model metadata)
            )
        return sql

    def params(self, objs: Iterable[Model], connection=default_connection) -> list[tuple]:
        """The statement's parameters, a tuple per object: its fields' values, then its key."""
        if (prep := self._prep.get(connection.vendor)) is None:
            prep = self._prep[connection.vendor] = _preparers((*self.fields, self.key), connection)
        attnames = [f.attname for f in (*self.fields, self.key)]
        return [tuple(p(getattr(obj, a)) for p, a in zip(prep, attnames, strict=True)) for obj in objs]

    def execute(self, objs: Iterable[Model], connection=default_connection) -> None:
        """Write these objects' fields to their rows (by key), in the connection's transaction."""
        connection = _resolved(connection)
        if rows := self.params(objs, connection):
            with connection.cursor() as cursor:
                cursor.executemany(self.sql(connection), rows)


class BulkInsert:
    """`INSERT INTO table (columns) ...` for many rows at once, returning `returning`.

    `fields` defaults to every concrete field but an automatic primary key, in model order. Rows
    are tuples of Python values in that order, leaving out the `shared` fields, which take one
    value for the whole call. `conflict` names the fields of a unique constraint: a row that
    would break it is skipped (ON CONFLICT ... DO NOTHING) and returns nothing; `conflict="any"`
    skips a row that would break any unique constraint (partial ones too, which fields cannot name).

    On PostgreSQL it runs on a server-side-binding cursor over Django's connection (so inside its
    transaction; Django's cursors bind client-side, quoting every value in Python), in one of two
    forms, each one statement text whatever the batch size, so the server parses it once (and
    logged as Django's cursors log, so that query budgets and CaptureQueriesContext count it):
    - `arrays=True`: each column travels as one typed array, `INSERT ... SELECT ... FROM unnest(...)`,
      one round trip for the whole batch;
    - otherwise one row's VALUES, prepared, and executemany pipelining the rows.
    Elsewhere (SQLite, the embedded default): multi-row VALUES, `batch` rows per statement.
    """

    def __init__(
        self,
        model: type[Model],
        *,
        fields: Sequence[str] | None = None,
        shared: Sequence[str] = (),
        conflict: Sequence[str] | str = (),
        returning: Sequence[str] = ("pk",),
        arrays: bool = False,
        batch: int = 500,
    ):
        meta = model._meta
        self.model = model
        if fields is None:
            fields = [f.name for f in meta.concrete_fields if not (f.primary_key and isinstance(f, AutoFieldMixin))]
        self.fields = _fields(model, fields)
        self.shared = _fields(model, shared)
        if unknown := [f.name for f in self.shared if f not in self.fields]:
            raise ValueError(f"shared fields {unknown} are not among the inserted fields")
        self.any_conflict = conflict == "any"
        self.conflict = () if self.any_conflict else _fields(model, conflict)
        self.returning = _fields(model, returning)
        self.row_fields = tuple(f for f in self.fields if f not in self.shared)
        self._shared_at = frozenset(i for i, f in enumerate(self.fields) if f in self.shared)
        self.arrays, self.batch = arrays, batch
        self._sql: dict[tuple, str] = {}
        self._prep: dict[str, tuple[Callable, ...]] = {}

    def _tail(self, qn) -> str:
        tail = ""
        if self.any_conflict:
            tail += " ON CONFLICT DO NOTHING"
        elif self.conflict:
            tail += f" ON CONFLICT ({', '.join(qn(f.column) for f in self.conflict)}) DO NOTHING"
        if self.returning:
            tail += f" RETURNING {', '.join(qn(f.column) for f in self.returning)}"
        return tail

    def sql(self, connection=default_connection, rows: int = 1) -> str:
        """The statement: the PostgreSQL arrays form when `arrays` (whatever `rows`), else VALUES
        for `rows` rows."""
        arrays = self.arrays and connection.vendor == "postgresql"
        cache_key = (connection.vendor, 0 if arrays else rows)
        if (sql := self._sql.get(cache_key)) is None:
            qn = connection.ops.quote_name
            head = f"INSERT INTO {qn(self.model._meta.db_table)} ({', '.join(qn(f.column) for f in self.fields)})"
            if arrays:
                select, unnest = [], []
                for f in self.fields:
                    column_type = f.db_type(connection)
                    wire = _driver_value(f, connection)[1] or column_type
                    cast = "" if wire == column_type else f"::{column_type}"
                    if f in self.shared:  # cast: an untyped parameter in a select list would be text
                        select.append(f"%s::{wire}{cast}")
                    else:
                        select.append(f"u.c{len(unnest)}{cast}")
                        unnest.append(f"%s::{wire}[]")
                columns = ", ".join(f"c{i}" for i in range(len(unnest)))
                body = f" SELECT {', '.join(select)} FROM unnest({', '.join(unnest)}) AS u({columns})"  # noqa: S608 (names from model metadata)
            else:
                one = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
                body = " VALUES " + ", ".join([one] * rows)
            sql = self._sql[cache_key] = head + body + self._tail(qn)
        return sql

    def values_of(self, obj: Model) -> tuple:
        """One row's values from a model instance (all but the shared fields)."""
        return tuple(getattr(obj, f.attname) for f in self.row_fields)

    def _preparers(self, connection) -> tuple[Callable, ...]:
        """One preparer per inserted field, in order (made once per database vendor)."""
        if (prep := self._prep.get(connection.vendor)) is None:
            prep = self._prep[connection.vendor] = _preparers(self.fields, connection)
        return prep

    def _shared_values(self, shared: dict | None, connection) -> list:
        """The shared fields' prepared values, in order."""
        shared = shared or {}
        if len(shared) != len(self.shared) or any(f.name not in shared for f in self.shared):
            raise ValueError(f"give one value for each shared field: {[f.name for f in self.shared]}")
        prep = self._preparers(connection)
        return [prep[i](shared[self.fields[i].name]) for i in self._shared_at]

    def _full_rows(self, rows: Sequence[tuple], shared: dict | None, connection) -> list[list]:
        """Rows of prepared values in the statement's column order."""
        prep = self._preparers(connection)
        if not self.shared:
            return [[p(v) for p, v in zip(prep, row, strict=True)] for row in rows]
        given = iter(self._shared_values(shared, connection))
        slots = [next(given) if i in self._shared_at else None for i in range(len(self.fields))]
        row_prep = [prep[i] for i in range(len(self.fields)) if i not in self._shared_at]
        prepared = []
        for row in rows:
            values = iter([p(v) for p, v in zip(row_prep, row, strict=True)])
            prepared.append([next(values) if i not in self._shared_at else slot for i, slot in enumerate(slots)])
        return prepared

    def execute(self, rows: Sequence[tuple], *, shared: dict | None = None, connection=default_connection) -> list:
        """Insert these rows; the `returning` values of the rows stored, as tuples."""
        if not rows:
            return []
        connection = _resolved(connection)
        if connection.vendor == "postgresql":
            started = time.monotonic()
            try:
                return self._execute_pg(rows, shared, connection)
            finally:
                if connection.queries_logged:  # as Django's own cursor would: query budgets see it
                    count = "" if self.arrays or len(rows) == 1 else f"{len(rows)} times: "
                    connection.queries_log.append(
                        {"sql": count + self.sql(connection), "time": f"{time.monotonic() - started:.3f}"}
                    )
        stored = []
        with connection.cursor() as cursor:
            for start in range(0, len(rows), self.batch):
                part = self._full_rows(rows[start : start + self.batch], shared, connection)
                cursor.execute(self.sql(connection, len(part)), [value for row in part for value in row])
                if self.returning:
                    stored += cursor.fetchall()
        return stored

    def _execute_pg(self, rows, shared, connection) -> list:
        """On a server-side-binding cursor of its own over Django's connection (so in its
        transaction), which Django's query log does not see: execute() logs it."""
        from psycopg import Cursor

        connection.ensure_connection()
        with Cursor(connection.connection) as cursor:
            if self.arrays:
                return self._execute_arrays(cursor, rows, shared, connection)
            params = self._full_rows(rows, shared, connection)
            if len(params) == 1:
                cursor.execute(self.sql(connection), params[0], prepare=True)
                return cursor.fetchall() if self.returning else []
            cursor.executemany(self.sql(connection), params, returning=bool(self.returning))
            stored = []
            while True:
                stored += cursor.fetchall() if self.returning else []
                if not cursor.nextset():
                    return stored

    def _execute_arrays(self, cursor, rows, shared, connection) -> list:
        prep = self._preparers(connection)
        row_prep = [prep[i] for i in range(len(self.fields)) if i not in self._shared_at]
        columns = [[p(row[i]) for row in rows] for i, p in enumerate(row_prep)]
        cursor.execute(self.sql(connection), self._shared_values(shared, connection) + columns)
        return cursor.fetchall() if self.returning else []
