"""Dead letters: events that detection could not judge, set aside so that the rest went on.

Failures are of two kinds. Transient ones (the database or the broker out of reach, a
serialization failure, a deadlock) are the moment's, not the event's: the task retries them, a
bounded number of times. Anything else is the event's own (a value that does not fit, a date out
of range, a rule's bug): detection isolates the event and sets it aside here, with the error's
class and where it was raised, and never its message (it may quote the event's values).
"""

import logging
import os
import traceback

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from alerts.models import AccountEvent, EventDeadLetter

logger = logging.getLogger(__name__)


def _transient_classes() -> tuple[type[BaseException], ...]:
    # Django wraps the drivers' errors (psycopg's SerializationFailure and DeadlockDetected are
    # OperationalErrors, a dropped connection an OperationalError or InterfaceError; SQLite's
    # "database is locked" too); the broker's and Redis's come through kombu and redis-py.
    classes: list[type[BaseException]] = [OperationalError, InterfaceError, ConnectionError, TimeoutError]
    try:
        import psycopg

        classes += [psycopg.OperationalError, psycopg.InterfaceError]
    except ImportError:  # SQLite-only installs
        pass
    from kombu.exceptions import OperationalError as BrokerError

    classes.append(BrokerError)
    try:
        import redis.exceptions

        classes += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:
        pass
    return tuple(classes)


TRANSIENT = _transient_classes()


def is_transient(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is worth retrying as it is: a lost connection, a
    serialization failure or deadlock. Everything else is permanent for the event at hand."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, TRANSIENT):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def error_class(error: BaseException) -> str:
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"[:200]


def error_where(error: BaseException) -> str:
    """The innermost frame of the project's own code that the error went through: file, line and
    function (names only: no values)."""
    frames = traceback.extract_tb(error.__traceback__)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ours = [f for f in frames if f.filename.startswith(root) and "/.venv/" not in f.filename] or frames
    if not ours:
        return ""
    frame = ours[-1]
    return f"{os.path.relpath(frame.filename, root)}:{frame.lineno} in {frame.name}"[:200]


def event_set_aside(*, event_id: int, error: BaseException) -> EventDeadLetter | None:
    """Mark the event processed and record its dead letter (a second failure of the same event
    counts an attempt). None if another worker processed the event meanwhile."""
    now = timezone.now()
    with transaction.atomic():
        event = (
            AccountEvent.objects.select_for_update(no_key=True)
            .filter(pk=event_id, processed_at__isnull=True)
            .only("id", "tenant_id")
            .first()
        )
        if event is None:
            return None
        letter = EventDeadLetter.objects.select_for_update().filter(event_id=event_id).first()
        if letter is None:
            letter = EventDeadLetter(event_id=event_id, tenant_id=event.tenant_id, first_failed_at=now, attempts=0)
        letter.attempts += 1
        letter.error, letter.where, letter.last_failed_at, letter.resolved_at = (
            error_class(error), error_where(error), now, None
        )  # fmt: skip
        letter.save()
        AccountEvent.objects.filter(pk=event_id).update(processed_at=now)
    logger.error(
        "detection set an event aside as a dead letter",
        extra={"event_id": event_id, "tenant_id": event.tenant_id, "error": letter.error, "where": letter.where},
    )
    return letter


def dead_letter_failed_again(*, letter_id: int, error: BaseException) -> None:
    """A re-run of a dead-lettered event failed too: count the attempt, keep the latest error."""
    with transaction.atomic():
        letter = EventDeadLetter.objects.select_for_update().get(pk=letter_id)
        letter.attempts += 1
        letter.error, letter.where, letter.last_failed_at = error_class(error), error_where(error), timezone.now()
        letter.save(update_fields=["attempts", "error", "where", "last_failed_at"])
    logger.error(
        "a dead-lettered event failed again",
        extra={
            "event_id": letter.event_id,
            "tenant_id": letter.tenant_id,
            "error": letter.error,
            "where": letter.where,
        },
    )


def dead_letters_open_count() -> int:
    """How many events wait in dead letters (for /readyz and monitoring)."""
    return EventDeadLetter.objects.filter(resolved_at__isnull=True).count()
