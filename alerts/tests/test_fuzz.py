"""Property-based fuzzing of the event API: whatever the body, the answer is a 2xx or a 4xx with
the contract's error shape, never a 5xx."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.keys import api_key_issue
from alerts.tests.test_apis import event, post
from alerts.validation import EVENT_TYPES

pytestmark = pytest.mark.django_db

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=60)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
field_values = scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.text(max_size=8), scalars, max_size=3)


@st.composite
def near_valid_events(draw):
    """A valid event with some fields replaced by arbitrary values: reaches deep validation."""
    body = event(event_id=draw(st.text(min_size=1, max_size=20)), type_=draw(st.sampled_from(sorted(EVENT_TYPES))))
    for path in draw(st.lists(st.sampled_from([
        "id", "type", "occurred_at", "account", "context", "account.external_id", "account.email", "account.phone",
        "account.locale", "account.channels", "context.ip", "context.geo", "context.scopes", "context.amount",
        "context.currency", "context.fields",
    ]), max_size=3)):  # fmt: skip
        target, _, leaf = path.rpartition(".")
        holder = body[target] if target else body
        if isinstance(holder, dict):
            holder[leaf] = draw(field_values)
    return body


@pytest.fixture
def issued(tenant_a):
    return api_key_issue(tenant=tenant_a)


def _assert_contract(response):
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        errors = json.loads(response.content)["errors"]
        assert errors and all({"index", "field", "message"} <= set(e) for e in errors)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_arbitrary_json_never_breaks_the_api(issued, body):
    _assert_contract(post(issued, body))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=near_valid_events())
def test_near_valid_events_never_break_the_api(issued, body):
    _assert_contract(post(issued, {"events": [body]}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_break_the_api(issued, raw):
    _assert_contract(post(issued, None, raw=raw))
