"""Helpers for the few reads written in SQL rather than through the ORM (hot pages: see
desk.queue_reads, alerts.selectors._alert_read and the case page's reads in desk.selectors)."""

import functools
import re
from datetime import UTC

from django.db import DEFAULT_DB_ALIAS, connection, connections


@functools.cache
def _converters(field, vendor: str) -> tuple:
    col = field.get_col(field.model._meta.db_table)
    return col, tuple(connection.ops.get_db_converters(col) + field.get_db_converters(connection))


_CONSTANT = re.compile(r"[a-z_]+")


def sql_constants(values) -> str:
    """`('a', 'b')`: the code's own fixed values (statuses, actions) written into a statement's text,
    for an IN that a partial index's predicate names. PostgreSQL can only use such an index in the
    plan it keeps for a prepared statement (a generic plan) when the statement says the values
    itself; sent as parameters, the statement is planned again at every execution. Only plain
    lowercase words are taken: anything from a request or the data stays a parameter."""
    values = [str(v) if isinstance(v, str) else v for v in values]
    if not values or not all(isinstance(v, str) and _CONSTANT.fullmatch(v) for v in values):
        raise ValueError(f"not constants: {values!r}")
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def timestamps_in_c(cursor) -> None:
    """Have this cursor read PostgreSQL timestamps with psycopg's C loader. Django registers its own
    on every connection (psycopg's, subclassed in Python to set the time zone on each value), which
    also turns psycopg's C loader into its Python one: 3.8 µs a timestamp against 0.1 µs, and a
    queue page reads about 110. Only where the connection is in UTC (USE_TZ, no TIME_ZONE for the
    database: Django sets the session's TimeZone to UTC when it connects), where both give the same
    values with the same tzinfo; the C loader is not subclassable, so it goes on hot cursors only
    (3 µs each), not on the connection, whose loader Django's create_cursor inspects."""
    if connection.vendor == "postgresql" and connection.timezone is UTC:
        cursor.cursor.adapters.register_loader("timestamptz", _c_timestamptz_loader())


@functools.cache
def _c_timestamptz_loader():
    import psycopg
    from psycopg.pq import Format

    return psycopg.adapters.get_loader(psycopg.adapters.types["timestamptz"].oid, Format.TEXT)


def field_values(fields, values) -> list:
    """Column values read by a raw cursor, as the ORM gives them: each through the backend's and the
    field's converters (SQLite's naive datetimes made aware, its JSON text parsed, its 0/1 booleans).
    The connection is looked up once (each lookup through the proxy costs more than a conversion)."""
    conn = connections[DEFAULT_DB_ALIAS]
    vendor = conn.vendor
    out = []
    for field, value in zip(fields, values, strict=True):
        col, converters = _converters(field, vendor)
        for converter in converters:
            value = converter(value, col, conn)
        out.append(value)
    return out


def field_column(field, values: list) -> list:
    """One field's values in many rows, converted as field_values does (unchanged when the backend
    has no converter for it, as PostgreSQL has none for a datetime)."""
    conn = connections[DEFAULT_DB_ALIAS]
    col, converters = _converters(field, conn.vendor)
    if not converters:
        return values
    out = []
    for value in values:
        for converter in converters:
            value = converter(value, col, conn)
        out.append(value)
    return out


class ModelRead:
    """A model's rows read by a statement written in SQL, as the ORM's select_related(...).only(...)
    would give them: instances of `model` (fields not read are deferred, as with only()), with the
    related objects of some forward foreign keys joined and cached on them (None for a null key).

    The SELECT ... FROM ... JOIN part is built once; a caller adds its WHERE and ORDER BY, naming
    the model's table `alias` (`t` unless given) and the related tables by their foreign key's name,
    and may read more columns (`extra`: name, SQL, parameters), set as attributes of the instances.
    So a hot page pays no ORM compilation for its reads (about a third of the case page's time went
    to compiling a score of small statements), and every value still goes through the field's
    converters (field_values).

        ACTIONS = ModelRead(AccountAction, related={"requested_by": ["id", "username"]})
        ACTIONS.rows("t.case_id = %s", [case.pk], "ORDER BY t.id DESC LIMIT 10")
    """

    def __init__(self, model, *, fields=None, related: dict | None = None, alias: str = "t"):
        self.model = model
        self.alias = alias
        self._field_names = fields
        self._related = related or {}

    @staticmethod
    def _fields(model, names) -> list:
        concrete = list(model._meta.concrete_fields)
        if names is None:
            return concrete
        wanted = {model._meta.get_field(name).attname for name in names} | {model._meta.pk.attname}
        return [f for f in concrete if f.attname in wanted]  # in the model's order, as from_db wants

    @functools.cached_property
    def _parts(self):
        model, t = self.model, self.alias
        fields = self._fields(model, self._field_names)
        columns = [f'{t}."{f.column}"' for f in fields]
        joins, related = [], []
        for name, names in self._related.items():
            fk = model._meta.get_field(name)
            other = fk.related_model
            other_fields = self._fields(other, names)
            columns += [f'{name}."{f.column}"' for f in other_fields]
            joins.append(
                f' LEFT OUTER JOIN "{other._meta.db_table}" {name}'
                f' ON {name}."{fk.target_field.column}" = {t}."{fk.column}"'
            )
            related.append((fk, other, other_fields, [f.attname for f in other_fields]))
        source = f'"{model._meta.db_table}" {t}{"".join(joins)}'
        return ", ".join(columns), source, fields, [f.attname for f in fields], related

    def rows(self, where: str, params=(), then: str = "", *, extra=(), joins: tuple[str, list] = ("", [])) -> list:
        """The instances read by `SELECT ... FROM ... JOIN ... <joins> WHERE <where> <then>` (then:
        ORDER BY, LIMIT), with %s parameters in that order: those of `extra` (whose columns come
        first), of `joins` (more tables the caller joins: SQL and its parameters), then `params`."""
        columns, source, fields, names, related = self._parts
        more = "".join(f', {sql} AS "{name}"' for name, sql, _ in extra)
        joined, join_params = joins
        values = [p for _, _, extra_params in extra for p in extra_params] + list(join_params) + list(params)
        with connection.cursor() as cursor:
            timestamps_in_c(cursor)
            cursor.execute(f"SELECT {columns}{more} FROM {source} {joined} WHERE {where} {then}", values)  # noqa: S608 (from _meta)
            fetched = cursor.fetchall()
        alias, n = connection.alias, len(fields)
        out = []
        for row in fetched:
            obj = self.model.from_db(alias, names, field_values(fields, row[:n]))
            start = n
            for fk, other, other_fields, other_names in related:
                values = row[start : start + len(other_fields)]
                start += len(other_fields)
                target = None
                if getattr(obj, fk.attname) is not None:
                    target = other.from_db(alias, other_names, field_values(other_fields, values))
                fk.set_cached_value(obj, target)
            for (name, _, _), value in zip(extra, row[start:], strict=True):
                setattr(obj, name, value)
            out.append(obj)
        return out

    def by_ids(self, ids, then: str = "") -> list:
        """The rows of these primary keys (none for none)."""
        ids = list(ids)
        if not ids:
            return []
        marks = ", ".join(["%s"] * len(ids))
        return self.rows(f'{self.alias}."{self.model._meta.pk.column}" IN ({marks})', ids, then)
