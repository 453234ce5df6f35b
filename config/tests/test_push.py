"""config.push: sends after commit, never raises into the caller, and logs what it could not send."""

import logging

import pytest

from config import push

pytestmark = pytest.mark.django_db


def test_a_push_waits_for_commit(monkeypatch, django_capture_on_commit_callbacks):
    sent, buffered = [], []
    monkeypatch.setattr(push, "_send", sent.append)
    monkeypatch.setattr(push, "changes_append", buffered.append)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        push.user_access_changed(7)
        push.tenant_events([(3, "alert.created", {"id": 1, "type": "login", "severity": 2, "status": "open"})])
    assert sent == [] and buffered == []
    for callback in callbacks:
        callback()
    assert sent == [[("user.7", {"type": "access.changed"})]]
    # Alert changes are not fanned out: they wait in the buffer for the desk's flusher.
    assert buffered == [[{"tenant": 3, "id": 1, "type": "login", "severity": 2, "status": "open", "assignee": None}]]


def test_a_severity_change_keeps_the_previous_severity_for_placement():
    change = push.alert_change(3, {"id": 1, "type": "login", "severity": 4, "previous_severity": 2, "status": "open"})
    assert change["previous_severity"] == 2
    same = push.alert_change(3, {"id": 1, "type": "login", "severity": 4, "previous_severity": 4, "status": "open"})
    assert "previous_severity" not in same


def test_changes_that_cannot_be_buffered_are_logged_at_warning(monkeypatch, caplog):
    class Broken:
        def append(self, changes):
            raise ConnectionError("redis down")

    monkeypatch.setattr(push, "_buffer", Broken())
    with caplog.at_level(logging.WARNING, logger="config.push"):
        push.changes_append([{"id": 1}])
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.getMessage() == "live changes not buffered"


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


def test_channel_layer_losses_are_raised_to_warning_and_counted(caplog, settings):
    from config.logging import ChannelLayerLossFilter

    # Wired in settings.LOGGING on the logger channels_redis writes with (not its parent: a logger's
    # filters do not see its children's records), at a level that lets INFO through to the filter.
    assert settings.LOGGING["filters"]["layer_losses"] == {"()": "config.logging.ChannelLayerLossFilter"}
    assert settings.LOGGING["loggers"]["channels_redis.core"] == {"level": "INFO", "filters": ["layer_losses"]}

    layer_logger = logging.getLogger("channels_redis.core")
    losses = ChannelLayerLossFilter()
    layer_logger.addFilter(losses)
    before = ChannelLayerLossFilter.dropped
    try:
        with caplog.at_level(logging.INFO, logger="channels_redis.core"):
            layer_logger.info("%s of %s channels over capacity in group %s", 3, 50, "queue.7")  # as channels_redis does
    finally:
        layer_logger.removeFilter(losses)
    (record,) = [r for r in caplog.records if r.name == "channels_redis.core"]
    assert (
        record.levelno == logging.WARNING and record.getMessage() == "3 of 50 channels over capacity in group queue.7"
    )
    assert ChannelLayerLossFilter.dropped >= before + 3
