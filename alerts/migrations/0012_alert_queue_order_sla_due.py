# The queue order is severity, then SLA due time, then age (desk.selectors.QUEUE_ORDER): the
# partial index that serves it gets the due time.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0011_alert_active_queue_order_idx'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='alert',
            name='alert_active_queue_order_idx',
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(condition=models.Q(('status__in', ['open', 'acknowledged'])), fields=['tenant', '-severity', 'sla_due_at', 'first_seen_at', 'id'], name='alert_active_queue_order_idx'),
        ),
    ]
