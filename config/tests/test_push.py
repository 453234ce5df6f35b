"""config.push: sends after commit, never raises into the caller, and logs what it could not send."""

import logging

import pytest

from config import push

pytestmark = pytest.mark.django_db


def test_a_push_waits_for_commit(monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(push, "_send", sent.append)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        push.user_access_changed(7)
        push.tenant_events([(3, "alert.created", {"id": 1})])
    assert sent == []
    for callback in callbacks:
        callback()
    assert sent == [
        [("user.7", {"type": "access.changed"})],
        [
            (
                "tenant.3",
                {
                    "type": "push.event",
                    "group": "tenant.3",
                    "event": "alert.created",
                    "queue": None,
                    "payload": {"id": 1, "tenant": 3},
                },
            )
        ],
    ]


def test_a_push_that_cannot_be_sent_is_logged_at_warning_and_the_caller_goes_on(
    monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def broken_layer():
        raise ConnectionError("channel layer down")

    monkeypatch.setattr(push, "get_channel_layer", broken_layer)
    with caplog.at_level(logging.WARNING, logger="config.push"), django_capture_on_commit_callbacks(execute=True):
        push.users_access_changed([1, 2, 1])
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.getMessage() == "live push not sent"
    assert (record.push_types, record.push_count) == (["access.changed"], 2)
