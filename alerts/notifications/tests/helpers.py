"""Feeding events through ingestion and detection, as the API and the worker would, for the
notification tests."""

import itertools
from datetime import UTC, datetime, timedelta

from alerts.detection import events_process
from alerts.models import AccountEvent
from alerts.services import events_ingest
from alerts.validation import validate_event

_ids = itertools.count()
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CONTACTS = {"email": "jane.doe@example.com", "phone": "+14155550100"}


def account(external_id="alice", *, channels=None, **contacts):
    """An `account` object as a client sends it: Jane's email and phone unless told otherwise."""
    body = {"external_id": external_id, **CONTACTS, **contacts}
    if channels is not None:
        body["channels"] = channels
    return {k: v for k, v in body.items() if v is not None}


def feed(tenant, type_, *, minutes=0, account_=None, now=None, **context) -> AccountEvent:
    """Ingest one event and run detection on it (inside the test's transaction: nothing is sent
    unless the test runs the on-commit callbacks)."""
    raw = {
        "id": f"nev-{next(_ids)}",
        "type": type_,
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "account": account_ or account(),
        "context": context,
    }
    _, _, ids = events_ingest(tenant=tenant, events=[validate_event(raw, now=T0 + timedelta(days=30))])
    events_process(event_ids=ids, now=now)
    return AccountEvent.objects.get(pk=ids[0])


def answer_link_of(text: str):
    """The notification named by the "Was this you?" link in a message's text (checked as the
    answer page checks it), or None."""
    import re

    from alerts.notifications.answers import notification_get_by_answer_token

    found = re.search(r"/r/([^/\s]+)/", text)
    return notification_get_by_answer_token(token=found.group(1)) if found else None


OUTBOX = "alerts.notifications.channels.OutboxBackend"


def backends(**channels):
    """Settings with the outbox on every channel but those given."""
    from django.test import override_settings

    every = {"email": OUTBOX, "sms": OUTBOX, "push": OUTBOX, "voice": OUTBOX}
    return override_settings(NOTIFICATION_BACKENDS={**every, **channels})


def send_all():
    """Send every row, running what the services leave for after commit (fallbacks)."""
    from django.test import TestCase

    from alerts.models import Notification
    from alerts.notifications.services import notifications_send

    with TestCase.captureOnCommitCallbacks(execute=True):
        return notifications_send(notification_ids=list(Notification.objects.values_list("pk", flat=True)))
