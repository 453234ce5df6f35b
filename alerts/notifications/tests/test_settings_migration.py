"""The migration that made the message settings the one home of a tenant's time zone, official
domain and support contact carries over what only the notification settings held."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from alerts.models import MessageSettings

BEFORE = [("alerts", "0015_notification_sms_reply_index")]


@pytest.mark.django_db(transaction=True)
def test_values_only_the_notification_settings_held_move_to_the_message_settings():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    tenant_model, settings_model = old.get_model("accounts", "Tenant"), old.get_model("alerts", "NotificationSettings")
    messages_model = old.get_model("alerts", "MessageSettings")
    lonely = tenant_model.objects.create(slug="lonely", name="Lonely")
    settings_model.objects.create(
        tenant=lonely,
        time_zone="Europe/Paris",
        official_domain="https://Lonely-Bank.example/",
        support_contact="+33 1 23 45 67 89",
    )
    kept = tenant_model.objects.create(slug="kept", name="Kept")
    settings_model.objects.create(
        tenant=kept, time_zone="Asia/Tokyo", official_domain="old.example", support_contact="https://old.example/help"
    )
    messages_model.objects.create(
        tenant=kept, time_zone="America/New_York", official_domain="kept.example", support_url="https://kept.example/h"
    )
    untouched = tenant_model.objects.create(slug="untouched", name="Untouched")
    settings_model.objects.create(tenant=untouched)

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    moved = MessageSettings.objects.get(tenant__slug="lonely")
    assert (moved.time_zone, moved.official_domain, moved.support_phone) == (
        "Europe/Paris", "lonely-bank.example", "+33 1 23 45 67 89"
    )  # fmt: skip
    own = MessageSettings.objects.get(tenant__slug="kept")  # the message settings' own values win
    assert (own.time_zone, own.official_domain, own.support_url) == (
        "America/New_York", "kept.example", "https://kept.example/h"
    )  # fmt: skip
    assert not MessageSettings.objects.filter(tenant__slug="untouched").exists()
