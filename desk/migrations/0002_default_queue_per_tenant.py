from django.db import migrations


def default_queues(apps, schema_editor):
    """Every tenant made before queues existed gets its default queue (new tenants get theirs from
    accounts.services.tenant_create). Not audited: a schema step, not a staff action."""
    Tenant = apps.get_model("accounts", "Tenant")
    Queue = apps.get_model("desk", "Queue")
    have = set(Queue.objects.filter(is_default=True).values_list("tenant_id", flat=True))
    Queue.objects.bulk_create(
        Queue(tenant_id=pk, slug="default", name="Default", is_default=True)
        for pk in Tenant.objects.exclude(pk__in=have).values_list("pk", flat=True)
    )


class Migration(migrations.Migration):
    dependencies = [("desk", "0001_queue")]

    operations = [migrations.RunPython(default_queues, migrations.RunPython.noop)]
