"""tenant_ingest: a tenant's event-API settings from the command line, through an audited service."""

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from alerts.keys import api_key_issue
from alerts.models import IngestSettings
from alerts.services import ingest_settings_update
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("tenant_ingest", *args, stdout=out)
    return out.getvalue()


def _records():
    return list(AuditEvent.objects.filter(action=Action.UPDATE, target_type="alerts.ingestsettings").order_by("id"))


def test_without_options_it_prints_the_settings_and_changes_nothing(tenant_a):
    assert run("tenant-a") == "tenant: tenant-a\nsignature required: yes\nrate limit: 10000 events per second\n"
    assert _records() == []


def test_a_change_is_printed_recorded_once_and_takes_effect_on_the_api(tenant_a):
    key = api_key_issue(tenant=tenant_a)
    out = run("tenant-a", "--no-signature-required", "--rate-limit", "50")
    assert out == "tenant: tenant-a\nsignature required: no\nrate limit: 50 events per second\n"
    (record,) = _records()
    assert record.tenant_id == tenant_a.pk and record.changes == {
        "rate_limit_per_second": {"before": 10000, "after": 50},
        "signature_required": {"before": True, "after": False},
    }
    unsigned = {
        "id": "e1",
        "type": "login.succeeded",
        "occurred_at": datetime.now(UTC).isoformat(),
        "account": {"external_id": "c1"},
    }
    response = Client().post(
        "/api/v1/events/",
        data=json.dumps(unsigned),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key.api_key}",
    )
    assert response.status_code == 202

    assert "signature required: yes" in run("tenant-a", "--signature-required")
    assert IngestSettings.objects.get(tenant=tenant_a).signature_required
    assert IngestSettings.objects.get(tenant=tenant_a).rate_limit_per_second == 50  # left as it was
    assert len(_records()) == 2


def test_setting_what_is_already_set_records_nothing(tenant_a):
    run("tenant-a", "--signature-required", "--rate-limit", "10000")
    assert _records() == []


@pytest.mark.parametrize(
    "args, reason",
    [
        (["no-such-tenant"], "No such tenant: no-such-tenant."),
        (["tenant-a", "--rate-limit", "0"], "The rate limit must be between 1 and 1,000,000 events per second."),
        (["tenant-a", "--rate-limit", "-5"], "The rate limit must be between 1 and 1,000,000 events per second."),
        (["tenant-a", "--rate-limit", "2000000"], "The rate limit must be between 1 and 1,000,000"),
        (["tenant-a", "--rate-limit", "fast"], "invalid int value"),
        (["tenant-a", "--signature-required", "--no-signature-required"], "not allowed with argument"),
    ],
)
def test_bad_input_fails_with_a_one_line_reason_and_changes_nothing(tenant_a, args, reason):
    with pytest.raises(CommandError) as failed:
        run(*args)
    assert reason in str(failed.value) and "\n" not in str(failed.value)
    assert _records() == [] and not IngestSettings.objects.filter(tenant=tenant_a).exists()


def test_the_service_records_the_actor(tenant_a, admin_user):
    ingest_settings_update(tenant=tenant_a, rate_limit_per_second=7, actor=admin_user)
    (record,) = _records()
    assert record.actor == admin_user and record.target_id == str(tenant_a.pk)
