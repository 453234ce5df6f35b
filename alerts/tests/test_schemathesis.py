"""Schemathesis against /api/schema/: every operation the schema publishes, fed data that fits the
schema and data that does not, answers without a server error (issue 8, section 4).

The requests go through Django's WSGI handler in-process, as a browser's would: a staff session
past the OTP step with its CSRF token, and for the events endpoint a real tenant key with each body
signed (`sign_events_request`) so that generated events reach validation and detection. The count
of examples run is printed (`pytest -s` shows it) and asserted.
"""

import datetime as dt
import hashlib
import hmac
import json
import time
from collections import Counter

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from accounts.testing import verified_client
from alerts.keys import api_key_issue
from alerts.models import Alert
from alerts.tests.test_apis import event
from alerts.tests.test_detection import feed
from desk.services import case_open

pytestmark = pytest.mark.django_db(transaction=False)

EXAMPLES_PER_OPERATION_AND_MODE = 25
CSRF_TOKEN = "schemathesis0csrf0token000000000"  # 32 characters: a valid unmasked token


@pytest.fixture
def wsgi_app():
    # As Django's test client does: the test's transaction must outlive each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def sign_events_request(case, issued, *, sign: bool) -> dict:
    """The body serialized once, as schemathesis would send it, the tenant's key, and (when `sign`) a
    fresh signature over exactly those bytes; unsigned cases keep the generated headers."""
    serialized = case.as_transport_kwargs()
    if "json" in serialized:
        body = json.dumps(serialized["json"]).encode()
    else:
        body = serialized.get("data") or b""
        body = body.encode() if isinstance(body, str) else body
    headers = {"Authorization": f"Bearer {issued.api_key}"}
    if sign:
        stamp = str(int(time.time()))
        digest = hmac.new(issued.signing_secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers |= {"X-AlertDesk-Timestamp": stamp, "X-AlertDesk-Signature": f"sha256={digest}"}
    return {"headers": headers, "data": body}


# Any offset Python takes (up to 23:59; PostgreSQL stores up to 15:59), in recent years or any year.
_OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))
_RECENT = st.datetimes(min_value=dt.datetime(1999, 12, 31), max_value=dt.datetime.now(), timezones=_OFFSETS)
_EDGES = st.builds(
    lambda moment, tz: moment.replace(tzinfo=tz),
    st.sampled_from([dt.datetime.min, dt.datetime(1999, 12, 31, 23, 59), dt.datetime(2000, 1, 1), dt.datetime.max]),
    _OFFSETS,
)


def valid_event_bodies():
    """Events the generated schema data rarely makes (valid contacts, a sane time), with their
    times at the edges: detection runs on whatever validation lets through."""
    one = st.builds(
        lambda event_id, moment: event(event_id, occurred_at=moment.isoformat()),
        st.uuids().map(str),
        _RECENT | _EDGES | st.datetimes(timezones=_OFFSETS),
    )
    return st.lists(one, min_size=1, max_size=3).map(lambda events: {"events": events})


def test_no_operation_answers_a_server_error(
    wsgi_app, agent, tenant_a, tenant_b, django_capture_on_commit_callbacks, capsys
):
    feed(tenant_a, "mfa.disabled", factor="totp", account="alice")
    feed(tenant_b, "mfa.disabled", factor="totp", account="zed")
    mine = Alert.objects.filter(tenant=tenant_a).values_list("pk", flat=True).first()
    my_case = case_open(actor=agent, alert=Alert.objects.get(pk=mine))[0].pk
    issued = api_key_issue(tenant=tenant_a)
    session = verified_client(agent).cookies["sessionid"].value
    cookies = {"sessionid": session, "csrftoken": CSRF_TOKEN}

    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /api/v1/events/", "GET /api/v1/alerts/", "GET /api/v1/alerts/{alert_id}/"} <= labels
    statuses: Counter = Counter()
    examples: Counter = Counter()

    def fuzz(operation, mode):
        strategy = operation.as_strategy(generation_mode=mode)
        if "alert_id" in operation.path and mode.is_positive:  # also on an alert the agent may work
            strategy = strategy | operation.as_strategy(generation_mode=mode, path_parameters={"alert_id": mine})
        if "case_id" in operation.path and mode.is_positive:  # also on a case the agent may work
            strategy = strategy | operation.as_strategy(generation_mode=mode, path_parameters={"case_id": my_case})
        if operation.path == "/api/v1/events/" and mode.is_positive:  # also events that pass validation
            strategy = strategy | valid_event_bodies().flatmap(lambda body: operation.as_strategy(body=body))

        @settings(
            max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy, sign=st.booleans())
        def run(case, sign):
            kwargs = {"cookies": cookies, "headers": {"X-CSRFToken": CSRF_TOKEN}}
            if operation.path == "/api/v1/events/":
                # Signed, to reach validation; in negative mode half keep the generated (bad) headers.
                kwargs = {"cookies": {}, **sign_events_request(case, issued, sign=sign or mode.is_positive)}
            with django_capture_on_commit_callbacks(execute=True):  # detection runs on what was accepted
                response = case.call(app=wsgi_app, **kwargs)
            statuses[response.status_code] += 1
            examples[operation.label] += 1
            case.validate_response(response, checks=[not_a_server_error])

        run()

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode)

    with capsys.disabled():
        print(f"\nschemathesis: {sum(examples.values())} examples over {len(operations)} operations, statuses")
        print(f"  {dict(sorted(statuses.items()))}")
    assert not [status for status in statuses if status >= 500]
    assert all(examples[label] >= EXAMPLES_PER_OPERATION_AND_MODE for label in labels), examples
    assert statuses[202] and statuses[200]  # signed events and the staff session did get through
