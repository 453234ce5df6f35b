"""Checkpoints name the key that signed them. Existing checkpoints were signed with the single
AUDIT_CHECKPOINT_KEY (key id "").

Added with plain ALTER TABLE ... ADD COLUMN ... DEFAULT '' on both databases, as 0004 did for
seals: the table is append-only, and SQLite's copy-and-drop way of adding a column would also drop
its append-only triggers.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_auditseal_key_id")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE audit_auditcheckpoint ADD COLUMN key_id varchar(16) NOT NULL DEFAULT ''",
                    "ALTER TABLE audit_auditcheckpoint DROP COLUMN key_id",
                )
            ],
            state_operations=[
                migrations.AddField(
                    model_name="auditcheckpoint",
                    name="key_id",
                    field=models.CharField(blank=True, default="", max_length=16),
                )
            ],
        )
    ]
