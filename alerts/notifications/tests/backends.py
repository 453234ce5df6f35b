"""Backends for tests: scripted answers, and one that blocks mid-send (the kill -9 test)."""

import os
import time
from pathlib import Path

from alerts.notifications.channels import Backend, OutboxBackend, PermanentFailure, Sent, TemporaryFailure


class ScriptedBackend(Backend):
    """Answers each send with the next item of `script` (an exception to raise, or Sent), then
    Sent(); records what it was given in `calls` (notification id, idempotency key, body)."""

    name = "scripted"
    script: list = []
    calls: list = []

    def send(self, notification, message, tenant_settings):
        ScriptedBackend.calls.append((notification.pk, notification.idempotency_key, message.body))
        if ScriptedBackend.script:
            answer = ScriptedBackend.script.pop(0)
            if isinstance(answer, BaseException):
                raise answer
            return answer
        return Sent(provider_message_id=f"SM{notification.pk}")


class NotIdempotentBackend(ScriptedBackend):
    name = "smtp-like"


class IdempotentBackend(ScriptedBackend):
    name = "api-like"
    idempotent = True
    confirms_delivery = True


class RateLimitedOutbox(OutboxBackend):
    pass


class BlockingOutboxBackend(OutboxBackend):
    """The outbox, stopping mid-send (its messages written, the transaction not committed yet)
    while the file NOTIFICATION_TEST_BLOCK names exists; it first creates that path + ".reached"
    so that a test knows the worker is there, and can kill it."""

    def send_many(self, items, now):
        sent = super().send_many(items, now)
        block = os.environ.get("NOTIFICATION_TEST_BLOCK")
        if block and Path(block).exists():
            Path(block + ".reached").write_text(str(os.getpid()))
            while Path(block).exists():
                time.sleep(0.05)
        return sent


__all__ = ["PermanentFailure", "TemporaryFailure"]
