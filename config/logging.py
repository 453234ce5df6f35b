"""Request ids for log lines and responses.

Each request gets an id (the caller's `X-Request-ID` when it is a sane token, else a new one) that
every log line written while handling it carries, and that the response echoes, so one support
ticket can be followed through the logs without putting personal data in them.
"""

import contextvars
import logging
import re
import time
import uuid
from dataclasses import dataclass

from config.http import client_ip

access_logger = logging.getLogger("alertdesk.access")
_VALID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


@dataclass(frozen=True)
class RequestContext:
    """Who is asking, from where: read by log lines and by the audit trail, so that services
    record the request id, address and user agent without being handed the request."""

    request_id: str
    ip: str | None = None
    user_agent: str = ""
    path: str = ""


_context: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("request_context", default=None)


_process_origin = "system"


def set_process_origin(origin: str) -> None:
    """What a process is, for records made outside a request: "cli" for manage.py commands."""
    global _process_origin
    _process_origin = origin


def process_origin() -> str:
    return _process_origin


def current_request() -> RequestContext | None:
    return _context.get()


def current_request_id() -> str:
    context = _context.get()
    return context.request_id if context else "-"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class RequestIdMiddleware:
    header = "X-Request-ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(self.header, "")
        request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = _context.set(
            RequestContext(
                request_id=request_id,
                ip=client_ip(request),
                user_agent=request.headers.get("User-Agent", "")[:300],
                path=request.path,
            )
        )
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            # The access log: no client address, no query string (both can be personal data), and
            # a view's route instead of its address where the address holds a secret (`log_path`:
            # the customer's answer link).
            access_logger.info(
                "%s %s %s",
                request.method,
                getattr(request, "log_path", request.path),
                response.status_code,
                extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1)},
            )
        finally:
            _context.reset(token)
        response[self.header] = request_id
        return response


class ChannelLayerLossFilter(logging.Filter):
    """Makes the channel layer's losses visible. channels_redis skips a group message for every
    connection whose queue is full (capacity, 100 by default) and says so only at INFO: raise that
    line to WARNING and count the channels it skipped (`dropped`, per process). With the desk's
    coalesced signals a connection gets a few messages a second, so this means a stuck consumer;
    its page refetches on the `seq` gap all the same. Wired in settings.LOGGING on
    `channels_redis.core` (a logger's filters do not apply to its children's records)."""

    dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "over capacity" in str(record.msg):
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
            skipped = record.args[0] if isinstance(record.args, tuple) and record.args else 1
            ChannelLayerLossFilter.dropped += skipped if isinstance(skipped, int) else 1
            return True
        return record.levelno >= logging.getLogger().getEffectiveLevel()  # the rest as the root level says
