from django.db import migrations

from audit import triggers


def install(apps, schema_editor):
    triggers.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    triggers.suspend(schema_editor.connection)


def sealer_state(apps, schema_editor):
    apps.get_model("audit", "AuditSealerState").objects.get_or_create(pk=1, defaults={"high_id": 0, "gaps": {}})


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(sealer_state, migrations.RunPython.noop),
        migrations.RunPython(install, uninstall),
    ]
