"""End to end on the real services: the API commits events, a real Celery worker (over Redis)
runs detection, the alert appears."""

import time

import pytest

from alerts.keys import api_key_issue
from alerts.models import AccountEvent, Alert
from alerts.tests.test_apis import event, post


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_events_posted_to_the_api_become_alerts_in_a_real_worker(tenant_a):
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    key = api_key_issue(tenant=tenant_a)
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            response = post(
                key, {"events": [event("w1", type_="mfa.disabled"), event("w2", type_="recovery.requested")]}
            )
            assert response.status_code == 202
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and Alert.objects.count() < 2:
                time.sleep(0.1)
    finally:
        app.conf.task_always_eager = True
    assert sorted(Alert.objects.values_list("rule", flat=True)) == ["mfa_change", "recovery"]
    assert not AccountEvent.objects.filter(processed_at__isnull=True).exists()
