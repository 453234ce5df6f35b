"""POST /api/v1/events/: every rule of contracts/events.md, and its refusals."""

import hashlib
import hmac
import io
import json
import time
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from alerts.crypto import decrypt
from alerts.keys import api_key_issue
from alerts.models import AccountEvent, ApiKey, Customer, IngestSettings
from audit.models import AuditEvent

URL = "/api/v1/events/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def key(tenant_a):
    return api_key_issue(tenant=tenant_a)


def event(event_id="e1", type_="login.succeeded", external_id="cust-1", **extra):
    body = {
        "id": event_id,
        "type": type_,
        "occurred_at": datetime.now(UTC).isoformat(),
        "account": {"external_id": external_id, "email": "jane.doe@example.com", "phone": "+14155550100"},
        "context": {"ip": "203.0.113.9", "device_id": "dev-1", "method": "password"},
    }
    body.update(extra)
    return body


def post(
    key, payload, *, secret=None, stamp=None, raw=None, content_type="application/json", api_key=None, client=None
):
    body = raw if raw is not None else json.dumps(payload).encode()
    stamp = str(int(time.time())) if stamp is None else stamp
    secret = key.signing_secret if secret is None else secret
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return (client or Client()).post(
        URL,
        data=body,
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {api_key or key.api_key}",
        HTTP_X_ALERTDESK_TIMESTAMP=stamp,
        HTTP_X_ALERTDESK_SIGNATURE=f"sha256={signature}",
    )


class TestAccepted:
    def test_a_single_event_is_stored_before_the_202(self, key, tenant_a, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            response = post(key, event())
        assert response.status_code == 202
        assert response.json() == {"accepted": 1, "duplicates": 0}
        stored = AccountEvent.objects.get(tenant=tenant_a, external_id="e1")
        assert stored.type == "login.succeeded" and stored.ip == "203.0.113.9"
        assert stored.processed_at is not None  # in-process detection ran on commit

    def test_a_broker_outage_after_commit_still_answers_202_and_loses_nothing(
        self, key, tenant_a, django_capture_on_commit_callbacks
    ):
        from kombu.exceptions import OperationalError

        with (
            mock.patch("alerts.tasks.events_process_task.delay", side_effect=OperationalError("broker down")),
            mock.patch("alerts.services.logger") as log,
            django_capture_on_commit_callbacks(execute=True),
        ):
            response = post(key, {"events": [event("a"), event("b")]})
        assert (response.status_code, response.json()) == (202, {"accepted": 2, "duplicates": 0})
        assert log.warning.call_args.kwargs["extra"] == {"events": 2, "error": "kombu.exceptions.OperationalError"}
        stored = AccountEvent.objects.filter(tenant=tenant_a)
        assert stored.count() == 2 and not stored.filter(processed_at__isnull=False).exists()  # for the relay

    def test_a_batch_with_repeats_counts_duplicates_and_stores_each_id_once(self, key, tenant_a):
        assert post(key, {"events": [event("a"), event("b")]}).json() == {"accepted": 2, "duplicates": 0}
        again = post(key, {"events": [event("b", type_="login.failed"), event("c"), event("c")]})
        assert again.json() == {"accepted": 1, "duplicates": 2}
        assert AccountEvent.objects.filter(tenant=tenant_a).count() == 3
        assert AccountEvent.objects.get(external_id="b").type == "login.succeeded"  # whatever its new body

    def test_the_same_id_in_another_tenant_is_not_a_duplicate(self, key, tenant_b):
        other = api_key_issue(tenant=tenant_b)
        assert post(key, event("same")).json()["accepted"] == 1
        assert post(other, event("same")).json()["accepted"] == 1

    def test_account_details_create_then_update_the_customer_encrypted_and_audited_masked(self, key, tenant_a):
        post(key, event("1"))
        customer = Customer.objects.get(tenant=tenant_a, external_id="cust-1")
        assert customer.email == "jane.doe@example.com" and customer.phone == "+14155550100"
        with connection.cursor() as cursor:
            cursor.execute("SELECT email, phone FROM alerts_customer WHERE id = %s", [customer.pk])
            raw_email, raw_phone = cursor.fetchone()
        assert "jane" not in raw_email and "4155550100" not in raw_phone  # encrypted at rest

        changed = event("2")
        changed["account"]["email"] = "j.doe@example.org"
        post(key, changed)
        assert Customer.objects.get(pk=customer.pk).email == "j.doe@example.org"
        update = AuditEvent.objects.get(action="update", target_type="alerts.customer")
        assert update.changes == {"email": {"before": "j***@e***", "after": "j***@e***"}}
        assert "jane" not in str(AuditEvent.objects.values()) and "doe@" not in str(AuditEvent.objects.values())

    def test_unchanged_details_are_told_by_digest_without_decrypting_or_recording(self, key, tenant_a):
        post(key, event("1"))
        records = AuditEvent.objects.filter(target_type="alerts.customer").count()
        with mock.patch("alerts.crypto.decrypt", wraps=decrypt) as decrypted:
            assert post(key, event("2")).status_code == 202
        assert decrypted.call_count == 1  # the key's signing secret; no contact detail
        assert AuditEvent.objects.filter(target_type="alerts.customer").count() == records
        assert "jane" not in str(Customer.objects.values_list("contact_digests", flat=True)[0])

    def test_stale_digests_cost_a_compare_and_record_nothing(self, key, tenant_a):
        post(key, event("1"))
        Customer.objects.filter(tenant=tenant_a).update(contact_digests={})  # as before digests, or a new key
        records = AuditEvent.objects.filter(target_type="alerts.customer").count()
        post(key, event("2"))
        customer = Customer.objects.get(tenant=tenant_a, external_id="cust-1")
        assert set(customer.contact_digests) == {"email", "phone"} and customer.email == "jane.doe@example.com"
        assert AuditEvent.objects.filter(target_type="alerts.customer").count() == records
        changed = event("3")
        changed["account"]["phone"] = "+14155550199"
        post(key, changed)
        assert Customer.objects.get(pk=customer.pk).phone == "+14155550199"
        assert AuditEvent.objects.filter(target_type="alerts.customer").count() == records + 1

    def test_signature_can_be_made_optional_for_onboarding(self, key, tenant_a):
        IngestSettings.objects.filter(tenant=tenant_a).update(signature_required=False)
        response = Client().post(
            URL, data=json.dumps(event()), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key.api_key}"
        )
        assert response.status_code == 202


class TestRefused:
    def assert_nothing_stored(self, tenant):
        assert not AccountEvent.objects.filter(tenant=tenant).exists()

    def test_one_bad_item_refuses_the_whole_batch_with_per_item_errors(self, key, tenant_a):
        bad = event("b", occurred_at="yesterday")
        bad["account"]["phone"] = "555-0100"
        response = post(key, {"events": [event("a"), bad, event("c", type_="login.teleported")]})
        assert response.status_code == 400
        assert response.json() == {
            "errors": [
                {
                    "index": 1,
                    "field": "occurred_at",
                    "message": "must be an RFC 3339 timestamp, e.g. 2026-11-21T10:15:00Z",
                },
                {"index": 2, "field": "type", "message": "unknown event type 'login.teleported'"},
            ]
        }
        self.assert_nothing_stored(tenant_a)
        assert not Customer.objects.exists()

    @pytest.mark.parametrize(
        "mutate, field",
        [
            (lambda e: e.update(id=123), "id"),
            (lambda e: e.update(id=""), "id"),
            (lambda e: e.update(id="x" * 129), "id"),
            (lambda e: e.update(occurred_at="2026-11-21T10:00:00"), "occurred_at"),
            (lambda e: e.update(occurred_at=(datetime.now(UTC) + timedelta(minutes=10)).isoformat()), "occurred_at"),
            (lambda e: e.pop("account"), "account"),
            (lambda e: e["account"].update(external_id=7), "account.external_id"),
            (lambda e: e["account"].update(phone="+0123"), "account.phone"),
            (lambda e: e["account"].update(email="not-an-email"), "account.email"),
            (lambda e: e["account"].update(locale="english please"), "account.locale"),
            (lambda e: e["account"].update(channels={"sms": "true"}), "account.channels.sms"),
            (lambda e: e["context"].update(ip="999.1.1.1"), "context.ip"),
            (lambda e: e["context"].update(user_agent="x" * 1001), "context.user_agent"),
            (lambda e: e["context"].update(geo={"country": "France"}), "context.geo.country"),
            (lambda e: e["context"].update(geo={"lat": "48.8", "lon": 2.3}), "context.geo.lat"),
            (lambda e: e["context"].update(scopes="read write"), "context.scopes"),
            (lambda e: e["context"].update(amount=12.5), "context.amount"),
            (lambda e: e["context"].update(amount="1e5"), "context.amount"),
            (lambda e: e["context"].update(currency="euro"), "context.currency"),
            (lambda e: e.update(context=[]), "context"),
            (lambda e: e.update(id="nul\x00byte"), "id"),
            (lambda e: e["account"].update(display_name="\ud800"), "account.display_name"),
        ],
    )
    def test_malformed_fields_name_their_dotted_path(self, key, tenant_a, mutate, field):
        body = event()
        mutate(body)
        response = post(key, body)
        assert response.status_code == 400, response.content
        assert [e["field"] for e in response.json()["errors"]] == [field]
        self.assert_nothing_stored(tenant_a)

    @pytest.mark.parametrize("payload", [[], "text", {"events": []}, {"events": "x"}, {"events": [1] * 1001}])
    def test_bodies_of_the_wrong_shape(self, key, tenant_a, payload):
        response = post(key, payload)
        assert response.status_code == 400 and response.json()["errors"]
        self.assert_nothing_stored(tenant_a)

    def test_malformed_json(self, key, tenant_a):
        response = post(key, None, raw=b'{"id": "x",')
        assert response.status_code == 400 and "not valid JSON" in response.json()["errors"][0]["message"]

    def test_wrong_content_type_is_415(self, key, tenant_a):
        assert post(key, None, raw=b"id=1", content_type="application/x-www-form-urlencoded").status_code == 415
        self.assert_nothing_stored(tenant_a)

    def test_oversized_body_is_413(self, key, tenant_a):
        big = {"events": [event(f"e{i}", context={"user_agent": "x" * 1000}) for i in range(1000)]}
        assert post(key, big).status_code == 413
        self.assert_nothing_stored(tenant_a)

    def test_missing_unknown_and_malformed_keys_are_401(self, key, tenant_a):
        no_auth = Client().post(URL, data="{}", content_type="application/json")
        assert no_auth.status_code == 401 and no_auth["WWW-Authenticate"].startswith("Bearer")
        assert post(key, event(), api_key="adk_nothere_" + "x" * 43).status_code == 401
        assert post(key, event(), api_key="garbage").status_code == 401
        self.assert_nothing_stored(tenant_a)

    def test_bad_signature_stale_timestamp_and_replay_are_401(self, key, tenant_a):
        assert post(key, event(), secret="whsec_wrong").status_code == 401
        old = str(int(time.time()) - 301)
        assert post(key, event(), stamp=old).status_code == 401
        future = str(int(time.time()) + 302)  # int() truncates, so +301 could land just inside the window
        assert post(key, event(), stamp=future).status_code == 401
        assert post(key, event(), stamp="soon").status_code == 401
        self.assert_nothing_stored(tenant_a)

    def test_a_captured_request_replayed_later_is_refused(self, key, tenant_a, monkeypatch):
        body = json.dumps(event()).encode()
        stamp = str(int(time.time()))
        assert post(key, None, raw=body, stamp=stamp).status_code == 202
        later = time.time() + 400
        monkeypatch.setattr("time.time", lambda: later)
        assert post(key, None, raw=body, stamp=stamp).status_code == 401

    def test_another_tenants_secret_does_not_sign_for_this_key(self, key, tenant_b):
        other = api_key_issue(tenant=tenant_b)
        assert post(key, event(), secret=other.signing_secret).status_code == 401

    def test_a_deactivated_tenant_is_403(self, key, tenant_a):
        tenant_a.is_active = False
        tenant_a.save()
        assert post(key, event()).status_code == 403
        self.assert_nothing_stored(tenant_a)

    def test_over_the_rate_limit_is_429_with_retry_after(self, key, tenant_a, monkeypatch):
        IngestSettings.objects.filter(tenant=tenant_a).update(rate_limit_per_second=3)
        monkeypatch.setattr("time.time", lambda: 1_800_000_000.5)  # one window for the whole test
        assert post(key, {"events": [event("r1"), event("r2")]}, stamp="1800000000").status_code == 202
        limited = post(key, {"events": [event("r3"), event("r4")]}, stamp="1800000000")
        assert limited.status_code == 429 and limited["Retry-After"] == "1"
        assert set(AccountEvent.objects.filter(tenant=tenant_a).values_list("external_id", flat=True)) == {"r1", "r2"}

    def test_staff_sessions_do_not_open_the_event_api(self, otp_client):
        assert otp_client.post(URL, data=json.dumps(event()), content_type="application/json").status_code == 401

    def test_get_is_not_allowed(self, key):
        assert Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {key.api_key}").status_code == 405


class TestKeys:
    def test_keys_are_stored_hashed_and_secrets_encrypted(self, key):
        record = ApiKey.objects.get(pk=key.record.pk)
        assert key.api_key not in record.key_hash
        with connection.cursor() as cursor:
            cursor.execute("SELECT signing_secret FROM alerts_apikey WHERE id = %s", [record.pk])
            assert key.signing_secret not in cursor.fetchone()[0]

    def test_rotation_keeps_the_old_key_for_the_overlap_then_not(self, key, tenant_a, settings):
        new = api_key_issue(tenant=tenant_a)
        assert post(key, event("old")).status_code == 202
        assert post(new, event("new")).status_code == 202
        ApiKey.objects.filter(pk=key.record.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert post(key, event("late")).status_code == 401
        assert post(new, event("later")).status_code == 202

    def test_revoked_key_is_refused(self, key):
        ApiKey.objects.filter(pk=key.record.pk).update(revoked_at=timezone.now())
        assert post(key, event()).status_code == 401

    def test_issue_api_key_command_prints_json_once(self, tenant_a):
        out = io.StringIO()
        call_command("issue_api_key", tenant_a.slug, "--json", stdout=out)
        printed = json.loads(out.getvalue())
        assert set(printed) == {"tenant", "api_key", "signing_secret"} and printed["tenant"] == tenant_a.slug
        issued = ApiKey.objects.get(tenant=tenant_a)
        assert printed["api_key"].startswith("adk_" + issued.prefix)
        assert AuditEvent.objects.filter(action="create", target_type="alerts.apikey").exists()

    def test_issue_api_key_refuses_an_unknown_tenant(self, db):
        from django.core.management import CommandError

        with pytest.raises(CommandError):
            call_command("issue_api_key", "nope")
