"""One source of truth for a tenant's time zone, official domain and support contact: the tenant's
MessageSettings (content, answer page and now quiet hours). Values set only on the notification
settings are carried over where the message settings have none, then the three columns go."""

import re

from django.db import migrations, models

PHONE = re.compile(r"^\+[0-9 ]{7,19}$")


def carry_over(apps, schema_editor):
    NotificationSettings = apps.get_model("alerts", "NotificationSettings")
    MessageSettings = apps.get_model("alerts", "MessageSettings")
    rows = NotificationSettings.objects.exclude(time_zone="UTC", official_domain="", support_contact="")
    for row in rows.iterator():
        target, _ = MessageSettings.objects.get_or_create(tenant_id=row.tenant_id)
        changed = []
        if row.time_zone and row.time_zone != "UTC" and target.time_zone in ("", "UTC"):
            target.time_zone = row.time_zone
            changed.append("time_zone")
        domain = re.sub(r"^https?://", "", row.official_domain.strip(), flags=re.I).rstrip("/").lower()
        if domain and not target.official_domain:
            target.official_domain = domain
            changed.append("official_domain")
        contact = row.support_contact.strip()
        if contact.lower().startswith("https://") and not target.support_url:
            target.support_url = contact[:200]
            changed.append("support_url")
        elif PHONE.match(contact) and not target.support_phone:
            target.support_phone = contact
            changed.append("support_phone")
        if changed:
            target.save(update_fields=changed)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0015_notification_sms_reply_index")]

    operations = [
        migrations.RunPython(carry_over, migrations.RunPython.noop),
        migrations.RemoveField(model_name="notificationsettings", name="time_zone"),
        migrations.RemoveField(model_name="notificationsettings", name="official_domain"),
        migrations.RemoveField(model_name="notificationsettings", name="support_contact"),
        migrations.AlterField(
            model_name="notificationsettings",
            name="quiet_end",
            field=models.TimeField(
                blank=True,
                help_text="... until (local time, in the time zone of the tenant's message settings).",
                null=True,
            ),
        ),
    ]
