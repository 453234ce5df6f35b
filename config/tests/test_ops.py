"""Probes, security headers, request ids, log hygiene and the production settings check."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from config.logging import RequestIdFilter

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


def test_readyz_is_503_when_the_database_is_down(client, monkeypatch):
    from config import health

    def broken():
        raise OSError("connection refused")

    monkeypatch.setattr(health, "_check_database", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["checks"]["database"] == "error"


@pytest.mark.services
def test_readyz_checks_the_redis_channel_layer(client):
    assert client.get("/readyz").json()["checks"] == {"database": "ok", "channel_layer": "ok"}


def test_strict_security_headers(client):
    response = client.get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_pages_carry_no_inline_script(otp_client):
    import re

    html = otp_client.get("/", follow=True).content.decode()  # the agent's queue page, with its modules
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all("src=" in tag for tag in scripts)  # external files only: 'self' allows them
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html)  # no inline event handlers
    assert "javascript:" not in html


def test_request_id_is_echoed_or_made(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc12345-trace")["X-Request-ID"] == "abc12345-trace"
    made = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert len(made) == 32 and " " not in made


def test_failed_logins_log_no_personal_data(db, caplog):
    caplog.set_level(logging.DEBUG)
    Client().post(
        "/accounts/login/", {"username": "victim@example.com", "password": "hunter2-secret"}, REMOTE_ADDR="203.0.113.7"
    )
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    for secret in ("victim@example.com", "hunter2-secret", "203.0.113.7"):
        assert secret not in logged


def test_favicon_is_public(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")


def test_access_log_line_has_no_client_address_or_query(client, caplog):
    caplog.set_level(logging.INFO, logger="alertdesk.access")
    client.get("/healthz?email=victim@example.com", REMOTE_ADDR="203.0.113.7")
    (record,) = [r for r in caplog.records if r.name == "alertdesk.access"]
    assert record.getMessage() == "GET /healthz 200"
    assert "203.0.113.7" not in str(record.__dict__) and "victim" not in str(record.__dict__)


def test_json_log_lines_carry_the_request_id():
    from pythonjsonlogger.json import JsonFormatter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    RequestIdFilter().filter(record)
    line = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s").format(record)
    assert json.loads(line)["request_id"] == "-"


def _production_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(
        ALERTDESK_ENV="production",
        DJANGO_SECRET_KEY="x" * 20 + "prod-test-key-not-used-anywhere-else-0123456789",
        DJANGO_ALLOWED_HOSTS="desk.example.com",
        AUDIT_CHECKPOINT_KEY="checkpoint-key-for-the-settings-test-only",
        AUDIT_SEAL_KEYS="p1:seal-key-for-the-settings-test-only",
        FIELD_ENCRYPTION_KEYS="xxJ3QyUjc5qS2dFQ3o4ctAKUC0C0Y7Yuz4JyIyV8mJk=",
        NOTIFICATION_PUBLIC_URL="https://desk.example.com",
        DJANGO_SETTINGS_MODULE="config.settings",
        **extra,
    )
    return env


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = _production_env()
    del env["DJANGO_SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "DJANGO_SECRET_KEY is required" in result.stderr


def test_production_settings_harden_cookies_and_transport():
    code = (
        "import django; django.setup(); from django.conf import settings as s; import json; print(json.dumps(["
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT,"
        "s.SECURE_HSTS_SECONDS, s.DEBUG, s.LOG_JSON, s.SESSION_COOKIE_NAME]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_production_env(), capture_output=True, text=True, timeout=60
    )
    assert json.loads(result.stdout) == [True, True, True, True, 31536000, False, True, "__Host-sessionid"]
