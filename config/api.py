"""What every HTTP API of the project shares: one JSON parser (depth and size limited), one way to
read a raw body with a hard limit, one exception handler with the published error shapes, and
cursor pages that refuse a hand-made cursor.

Error shapes (contracts/staff-api.md and contracts/events.md):
- staff API: `{"detail": "..."}`, or for field errors `{"errors": [{"field", "message"}]}`;
- a view with `error_format = "events"`: always `{"errors": [{"index", "field", "message"}]}`.
"""

import io
import json
from collections.abc import Iterator

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, parsers, status
from rest_framework.pagination import CursorPagination
from rest_framework.settings import api_settings

# Deeper than any body the API takes (an event is 4 levels deep), far below Python's recursion
# limit: json.loads recurses once per level, and so would anything that walks the result.
MAX_JSON_DEPTH = 32


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the body is too large"
    default_code = "too_large"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "the object's state does not allow this"
    default_code = "conflict"


class FieldErrors(exceptions.APIException):
    """A 400 whose errors are already in the published shape: dicts with `field` and `message`
    (and `index` for the events endpoint), as a validator that reports every error produces."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, errors: list[dict]):
        super().__init__("validation failed")
        self.errors = errors


class JSONTooDeepError(ValueError):
    pass


def _deeper_than(value, max_depth: int) -> bool:
    """Whether parsed JSON nests more than `max_depth` arrays/objects: walked a level at a time,
    without recursion."""
    level = [value]
    for _ in range(max_depth):
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def json_parse(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH):
    """Parse a JSON document (UTF-8, or UTF-16/32 as json.loads detects) no deeper than
    `max_depth`. Raises JSONTooDeepError or ValueError (NaN and Infinity are not JSON either)."""
    too_deep = JSONTooDeepError(f"the body is nested more than {max_depth} levels deep")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:  # json's decoder checks Python's recursion limit at each level and stops cleanly
        raise too_deep from None
    if isinstance(value, dict | list) and _deeper_than(value, max_depth):
        raise too_deep
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser for the whole API, with a depth limit and Django's body size limit
    (DATA_UPLOAD_MAX_MEMORY_SIZE, which DRF does not apply to a body it streams)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = (stream.read() if limit is None else stream.read(limit + 1)) if stream is not None else b""
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge()
        try:
            return json_parse(raw)
        except JSONTooDeepError as exc:
            raise exceptions.ParseError(str(exc)) from None
        except ValueError:  # also UnicodeDecodeError
            raise exceptions.ParseError("the body is not valid JSON") from None


def request_body(request, *, limit: int, message: str) -> bytes:
    """The raw body of a DRF request, never more than `limit` bytes read: also a chunked body
    without Content-Length (under ASGI), which Django's `request.body` would refuse with a 400 only
    after reading it all, and which DRF would take for an empty one. Raises RequestTooLarge.
    The parsers read the same bytes afterwards."""
    django_request = request._request
    raw = getattr(django_request, "_body", None)
    if raw is None:
        length = django_request.META.get("CONTENT_LENGTH") or ""
        if length.isascii() and length.isdigit() and int(length) > limit:
            raise RequestTooLarge(message)
        raw = django_request.read(limit + 1)
        django_request._body, django_request._stream = raw, io.BytesIO(raw)  # as HttpRequest.body keeps it
    if len(raw) > limit:
        raise RequestTooLarge(message)
    request._stream = io.BytesIO(raw)  # DRF parses from here, Content-Length or not
    return raw


def _flatten(detail, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted field path, message) for each message of a DRF or Django error structure."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key in (api_settings.NON_FIELD_ERRORS_KEY, "__all__") else str(key)
            yield from _flatten(value, ".".join(p for p in (path, name) if p))
    elif isinstance(detail, list | tuple):
        for item in detail:
            yield from _flatten(item, path)
    else:
        yield path, str(detail)


def _as_drf(exc: Exception) -> Exception:
    """Django's exceptions that answer a 4xx, as the API exceptions they are."""
    if isinstance(exc, Http404):
        return exceptions.NotFound(*exc.args)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(*exc.args)
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages})
    return exc


def exception_handler(exc, context):
    """DRF's handler (status, WWW-Authenticate, Retry-After, rollback), answering in the published
    shapes. Anything it does not know stays a 500: a bug, not malformed input."""
    from rest_framework.views import exception_handler as drf_exception_handler  # it reads this module's parser

    exc = _as_drf(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, FieldErrors):
        errors = [{"field": "", **e} for e in exc.errors]
    else:
        errors = [{"field": field, "message": message} for field, message in _flatten(exc.detail)]
    if getattr(context.get("view"), "error_format", None) == "events":
        response.data = {"errors": [{"index": e.get("index", 0), **e} for e in errors]}
    elif isinstance(exc, exceptions.ValidationError | FieldErrors):
        response.data = {"errors": errors}
    else:
        response.data = {"detail": "; ".join(e["message"] for e in errors)}
    return response


class StrictCursorPagination(CursorPagination):
    """DRF's cursor pages, refusing (404, as DRF does for an undecodable cursor) a cursor whose
    position the ordering field cannot hold: DRF hands the position to the query as it is, and a
    hand-made `p=abc` for an `-id` ordering was a 500."""

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
            try:
                if "\x00" in cursor.position:
                    raise DjangoValidationError("NUL")
                field.clean(cursor.position, None)
            except DjangoValidationError:
                raise exceptions.NotFound(self.invalid_cursor_message) from None
        return cursor
