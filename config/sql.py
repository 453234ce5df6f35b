"""Helpers for the few reads written in SQL rather than through the ORM (hot pages: see
desk.queue_reads and alerts.selectors._alert_read)."""

import functools

from django.db import DEFAULT_DB_ALIAS, connection, connections


@functools.cache
def _converters(field, vendor: str) -> tuple:
    col = field.get_col(field.model._meta.db_table)
    return col, tuple(connection.ops.get_db_converters(col) + field.get_db_converters(connection))


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
