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

access_logger = logging.getLogger("alertdesk.access")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def current_request_id() -> str:
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class RequestIdMiddleware:
    header = "X-Request-ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(self.header, "")
        request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = _request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            # The access log: no client address, no query string (both can be personal data).
            access_logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1)},
            )
        finally:
            _request_id.reset(token)
        response[self.header] = request_id
        return response
