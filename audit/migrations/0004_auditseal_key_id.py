"""Seals name the key of their HMAC. Existing seals are unkeyed (key id "").

The column is added with plain ALTER TABLE ... ADD COLUMN ... DEFAULT '' on both databases: the
seal table is append-only, so its rows cannot be rewritten, and SQLite's usual way of adding a
NOT NULL column (copy the table, drop the old one) would also drop its append-only triggers.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_occurred_at_brin")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE audit_auditseal ADD COLUMN key_id varchar(16) NOT NULL DEFAULT ''",
                    "ALTER TABLE audit_auditseal DROP COLUMN key_id",
                )
            ],
            state_operations=[
                migrations.AddField(
                    model_name="auditseal",
                    name="key_id",
                    field=models.CharField(blank=True, default="", max_length=16),
                )
            ],
        )
    ]
