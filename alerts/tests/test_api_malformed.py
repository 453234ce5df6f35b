"""Malformed requests get a 4xx in the contract's error shape, never a 5xx (issue 8, sections 1 and 4).

The events endpoint answers `{"errors": [{"index", "field", "message"}]}` (contracts/events.md);
the staff API `{"detail": "..."}` or `{"errors": [{"field", "message"}]}` (contracts/staff-api.md).
"""

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client

from alerts.keys import api_key_issue
from alerts.models import AccountEvent, Alert, AlertStatus
from alerts.tests.test_apis import URL, event, post
from alerts.tests.test_detection import feed
from audit.models import AuditEvent
from config.api import MAX_JSON_DEPTH

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(tenant_a):
    return api_key_issue(tenant=tenant_a)


@pytest.fixture
def alert(tenant_a):
    feed(tenant_a, "mfa.disabled", factor="totp", account="alice")
    return Alert.objects.get(tenant=tenant_a)


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def events_errors(response) -> list[dict]:
    body = response.json()
    assert set(body) == {"errors"} and body["errors"], body
    assert all(set(e) == {"index", "field", "message"} for e in body["errors"]), body
    return body["errors"]


def staff_error(response) -> dict:
    body = response.json()
    assert set(body) in ({"detail"}, {"errors"}), body
    if "errors" in body:
        assert body["errors"] and all(set(e) == {"field", "message"} for e in body["errors"]), body
    return body


class TestDeepJson:
    @pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
    def test_events_endpoint_refuses_deep_nesting_with_400(self, key, tenant_a, depth):
        response = post(key, None, raw=nested(depth))
        assert response.status_code == 400
        assert "nested" in events_errors(response)[0]["message"]
        assert not AccountEvent.objects.filter(tenant=tenant_a).exists()

    def test_nesting_up_to_the_limit_is_parsed(self, key, tenant_a):
        body = event()
        body["context"]["extra"] = json.loads(nested(MAX_JSON_DEPTH - 2))  # unknown fields are ignored
        assert post(key, body).status_code == 202
        body["context"]["extra"] = [body["context"]["extra"]]
        assert post(key, body).status_code == 400

    def test_deep_nesting_inside_a_string_is_just_text(self, key):
        body = event()
        body["context"]["user_agent"] = "[{" * 400
        assert post(key, body).status_code == 202

    @pytest.mark.parametrize("step", ["acknowledge", "resolve", "dismiss"])
    @pytest.mark.parametrize("raw", [nested(1_000), b"[" * 1_000 + b"]" * 1_000])
    def test_transitions_refuse_deep_nesting_with_400(self, otp_client, alert, step, raw):
        response = otp_client.post(f"/api/v1/alerts/{alert.pk}/{step}/", raw, content_type="application/json")
        assert response.status_code == 400
        assert "nested" in staff_error(response)["detail"]
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN


class TestTimestampHeader:
    @pytest.mark.parametrize("stamp", ["²", "¹²³", "١٧٠٠٠٠٠٠٠٠", "+1700000000", " 1700000000", "1" * 13, ""])
    def test_anything_but_ascii_unix_seconds_is_401(self, key, tenant_a, stamp):
        response = post(key, event(), stamp=stamp)
        assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
        assert events_errors(response)[0]["index"] == 0
        assert not AccountEvent.objects.filter(tenant=tenant_a).exists()


class TestOccurredAt:
    @pytest.mark.parametrize(
        "value, message",
        [
            ("0001-01-01T00:00:00+00:00", "2000"),
            ("1999-12-31T23:59:59Z", "2000"),
            ("0001-01-01T00:30:00+01:00", "2000"),
            ("9999-12-31T23:59:59-15:00", "future"),
            ("2026-01-01T00:00:00+16:00", "offset"),
            ("2026-01-01T00:00:00-23:59", "offset"),
            ("2026-01-01T00:00:00+05:30:15", "offset"),
        ],
    )
    def test_out_of_range_timestamps_are_refused_with_a_clear_400(self, key, tenant_a, value, message):
        response = post(key, event(occurred_at=value))
        assert response.status_code == 400, response.content
        (error,) = events_errors(response)
        assert error["field"] == "occurred_at" and message in error["message"], error
        assert not AccountEvent.objects.filter(tenant=tenant_a).exists()

    @pytest.mark.parametrize("offset", ["+15:59", "-15:59", "+05:30", "Z"])
    def test_offsets_postgresql_stores_are_accepted(self, key, tenant_a, offset, django_capture_on_commit_callbacks):
        moment = datetime.now(UTC) - timedelta(minutes=1)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S") + offset
        if offset != "Z":  # the same instant, written in that offset
            sign = 1 if offset[0] == "+" else -1
            local = moment + sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
            text = local.strftime("%Y-%m-%dT%H:%M:%S") + offset
        with django_capture_on_commit_callbacks(execute=True):
            assert post(key, event(occurred_at=text)).status_code == 202
        stored = AccountEvent.objects.get(tenant=tenant_a)
        assert abs(stored.occurred_at - moment) < timedelta(seconds=1) and stored.processed_at is not None


def asgi_post_chunked(path: str, headers: dict[str, str], body: bytes, chunk: int = 65536):
    """POST through Django's ASGI handler as daphne hands over a chunked request: the body in
    pieces, and no Content-Length header."""
    from django.core.handlers.asgi import ASGIHandler

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"testserver")] + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]
    sent = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # the client stays connected until the answer

    async def send(message):
        sent.append(message)

    # As Django's test client does: the test's transaction must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        async_to_sync(ASGIHandler())(scope, receive, send)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict((k.decode().lower(), v.decode()) for k, v in start["headers"]), content


def signed_headers(key, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = hmac.new(key.signing_secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {key.api_key}",
        "X-AlertDesk-Timestamp": stamp,
        "X-AlertDesk-Signature": f"sha256={signature}",
    }


class TestBodyLimit:
    def test_a_chunked_body_over_the_limit_without_content_length_is_413(self, key, tenant_a):
        raw = b'{"events": [' + b" " * (10 * 1024 * 1024) + b"]}"
        status, headers, content = asgi_post_chunked(URL, signed_headers(key, raw), raw)
        assert status == 413, content
        assert json.loads(content) == {"errors": [{"index": 0, "field": "", "message": "the body is over 1 MiB"}]}
        assert not AccountEvent.objects.filter(tenant=tenant_a).exists()

    def test_a_chunked_body_within_the_limit_is_read_whole(self, key, tenant_a):
        raw = json.dumps({"events": [event(f"c{i}") for i in range(300)]}).encode()
        assert len(raw) > 65536  # more than one piece
        status, _, content = asgi_post_chunked(URL, signed_headers(key, raw), raw)
        assert (status, json.loads(content)) == (202, {"accepted": 300, "duplicates": 0})

    def test_a_body_of_exactly_the_limit_is_read(self, key, tenant_a, settings):
        settings.INGEST_MAX_BODY_BYTES = 4096
        raw = json.dumps(event()).encode()
        raw = raw[:-1] + b" " * (4096 - len(raw)) + b"}"
        assert len(raw) == 4096
        assert post(key, None, raw=raw).status_code == 202
        assert post(key, None, raw=raw + b" ").status_code == 413

    def test_a_lying_content_length_does_not_reach_past_the_limit(self, key, settings):
        settings.INGEST_MAX_BODY_BYTES = 100
        assert post(key, event()).status_code == 413


class TestOptionsAndHead:
    @pytest.mark.parametrize("path", ["/api/v1/alerts/", "/api/v1/alerts/{pk}/"])
    def test_options_on_audited_endpoints_answers_and_records_nothing(self, otp_client, alert, path):
        before = AuditEvent.objects.count()
        response = otp_client.options(path.format(pk=alert.pk))
        assert response.status_code == 200 and "name" in response.json()
        assert AuditEvent.objects.count() == before

    def test_head_answers_without_a_body_and_records_nothing(self, otp_client, alert):
        before = AuditEvent.objects.count()
        response = otp_client.head(f"/api/v1/alerts/{alert.pk}/")
        assert response.status_code == 200 and response.content == b""
        assert AuditEvent.objects.count() == before

    def test_get_still_records(self, otp_client, alert):
        before = AuditEvent.objects.count()
        assert otp_client.get(f"/api/v1/alerts/{alert.pk}/").status_code == 200
        assert AuditEvent.objects.count() == before + 1


class TestCursor:
    @pytest.mark.parametrize(
        "cursor",
        [
            "garbage",
            base64.b64encode(b"p=abc").decode(),
            base64.b64encode(b"p=1e5").decode(),
            base64.b64encode(b"p=%00").decode(),
            base64.b64encode(b"p=" + b"9" * 40).decode(),
            base64.b64encode(b"p=-" + b"9" * 40).decode(),
            base64.b64encode(b"r=x&p=5").decode(),
            base64.b64encode("p=١٢".encode()).decode(),
        ],
    )
    def test_a_hand_made_cursor_is_404_json(self, otp_client, alert, cursor):
        response = otp_client.get("/api/v1/alerts/", {"cursor": cursor})
        assert response.status_code == 404, response.content
        assert set(staff_error(response)) == {"detail"}

    def test_a_real_cursor_still_pages(self, otp_client, tenant_a):
        for n in range(3):
            feed(tenant_a, "mfa.disabled", account=f"user-{n}")
        first = otp_client.get("/api/v1/alerts/", {"page_size": 2}).json()
        assert len(first["results"]) == 2 and first["next"]
        second = otp_client.get(first["next"]).json()
        assert len(second["results"]) == 1
        assert {r["id"] for r in first["results"]}.isdisjoint(r["id"] for r in second["results"])


class TestStaffErrorShape:
    def test_field_errors_are_a_list_of_field_and_message(self, otp_client, alert):
        response = otp_client.post(f"/api/v1/alerts/{alert.pk}/dismiss/", "{}", content_type="application/json")
        assert response.status_code == 400
        assert [e["field"] for e in staff_error(response)["errors"]] == ["note"]

    def test_a_bad_filter_is_a_field_error(self, otp_client, alert):
        response = otp_client.get("/api/v1/alerts/", {"min_severity": "9", "status": "exploded"})
        assert response.status_code == 400
        assert sorted(e["field"] for e in staff_error(response)["errors"]) == ["min_severity", "status"]

    def test_not_json_is_415_detail(self, otp_client, alert):
        response = otp_client.post(f"/api/v1/alerts/{alert.pk}/resolve/", "note=x", content_type="text/plain")
        assert response.status_code == 415 and staff_error(response)["detail"]

    def test_anonymous_and_password_only_get_json(self, password_only_client, alert):
        password_only = password_only_client.get("/api/v1/alerts/")
        assert password_only.status_code == 403  # staff-api.md: a password-only session gets 403 JSON
        assert staff_error(password_only) == {"detail": "Two-factor authentication is required."}
        anonymous = Client().get("/api/v1/alerts/")
        assert anonymous.status_code == 403 and staff_error(anonymous)["detail"]
