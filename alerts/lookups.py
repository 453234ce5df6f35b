"""`field__any=[...]`: membership in a list as one array parameter on PostgreSQL.

Django's `__in` sends one placeholder per value; for the 500 to 1,000 ids of an ingestion batch,
psycopg spends longer parsing those placeholders than PostgreSQL spends on the query, and every
batch size is a new statement. `= ANY(%s)` is one parameter and one statement text.
"""

from django.db.models import CharField, Lookup


@CharField.register_lookup
class AnyLookup(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [str(value) for value in self.rhs]
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]
