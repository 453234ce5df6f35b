import pytest

from alerts.notifications import services


@pytest.fixture
def no_tasks(monkeypatch):
    """Tasks the services queue are noted, not run."""
    queued = []
    monkeypatch.setattr(services, "notifications_enqueue", lambda ids: queued.append(list(ids)))
    monkeypatch.setattr(services, "_schedule", lambda deferred: queued.append(sorted(deferred)))
    return queued
