import datetime

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.tasks import session_expired_clear_task


def _sessions():
    now = timezone.now()
    Session.objects.create(session_key="old" + "x" * 29, session_data="", expire_date=now - datetime.timedelta(hours=1))
    Session.objects.create(session_key="new" + "x" * 29, session_data="", expire_date=now + datetime.timedelta(hours=1))


@pytest.mark.django_db
def test_expired_sessions_are_cleared_in_process():
    _sessions()
    assert session_expired_clear_task.delay().get() == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == ["new" + "x" * 29]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_runs_the_task_over_redis(settings):
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    _sessions()
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            result = session_expired_clear_task.delay()
            assert result.get(timeout=20) == 1
    finally:
        app.conf.task_always_eager = True
    assert Session.objects.count() == 1
