"""No URL answers data to a session that has not passed the OTP step.

Walks every pattern in the URLconf (Django admin's included), fills its parameters, and asks with
GET and POST as a password-only session (as `force_login` makes) and as an anonymous one.
"""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.decorators import mfa_not_required
from alerts.notifications.receipts import tracking_urlpatterns

# Public on purpose: the sign-in steps and the load-balancer probes. Each is tested elsewhere.
# The event API authenticates client systems by key and signature, never by staff session.
# The OpenAPI schema and docs are public: client companies integrate from them.
# Twilio's status callback authenticates by its signature (alerts/notifications/tests/test_channels.py).
PUBLIC = {"/healthz", "/readyz", "/accounts/login/", "/favicon.ico", "/api/v1/events/", "/api/schema/", "/api/docs/",
          "/notifications/twilio/status/1/"}  # fmt: skip
# The customer's "Was this you?" answer: no staff user at all; the signed link (or, for SMS replies,
# Twilio's signature) is the access check (alerts/tests/test_answers.py).
PUBLIC |= {"/r/1/", "/r/sms/twilio/"}
# Delivery receipts: the tenant app's push receipt is signed with its push secret
# (alerts/notifications/tests/test_push_receipts.py); email providers' webhooks are checked by
# django-anymail against the webhook secret (alerts/notifications/tests/test_email_receipts.py).
PUBLIC |= {"/notifications/push/receipt/"}
PUBLIC |= {f"/notifications/email/{p.pattern}" for p in tracking_urlpatterns()}
PARAM_VALUES = {"int": "1", "path": "x", "slug": "x", "str": "1", "uuid": "00000000-0000-0000-0000-000000000001"}


def _walk(resolver: URLResolver, prefix: str = ""):
    for entry in resolver.url_patterns:
        pattern = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry, pattern)
        elif isinstance(entry, URLPattern):
            yield pattern, entry


def _concrete(pattern: str) -> str:
    # Regex patterns (Django admin): fill named groups, drop anchors.
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "1", pattern)
    path = re.sub(r"<(?:(\w+):)?\w+>", lambda m: PARAM_VALUES.get(m.group(1) or "str", "1"), path)
    path = path.replace("^", "").replace("$", "").replace("\\Z", "").replace("\\", "")
    return "/" + path.lstrip("/")


ALL_URLS = sorted({_concrete(pattern) for pattern, _ in _walk(get_resolver())})


def test_the_walk_sees_the_whole_urlconf():
    assert {"/", "/accounts/security/", "/admin/", "/accounts/tenant/"} <= set(ALL_URLS)
    assert len(ALL_URLS) > 30  # Django admin's patterns are in


def _mfa_exempt_views():
    return sorted(
        _concrete(p)
        for p, entry in _walk(get_resolver())
        if getattr(getattr(entry.callback, "view_class", entry.callback), "mfa_not_required", False)
        or getattr(entry.callback, "mfa_not_required", False)
    )


def test_only_the_sign_in_steps_and_probes_skip_the_otp_step():
    signing_out = {"/accounts/logout/", "/admin/logout/"}
    assert set(_mfa_exempt_views()) <= PUBLIC | signing_out | {"/accounts/mfa/", "/accounts/mfa/enrol/"}


@pytest.mark.django_db
def test_the_marker_is_what_lets_a_password_only_session_through(agent, rf):
    """The walk above trusts `mfa_not_required`: the middleware must stop an unmarked view and
    let a marked one through, for the same password-only request."""
    from accounts.middleware import MFARequiredMiddleware

    request = rf.get("/somewhere/")
    request.user = agent
    agent.is_verified = lambda: False  # as django-otp leaves a session without the OTP step

    def view(request):
        raise AssertionError("not called by process_view")

    middleware = MFARequiredMiddleware(lambda request: None)
    stopped = middleware.process_view(request, view, (), {})
    assert stopped.status_code == 302 and stopped["Location"].startswith("/accounts/mfa/?next=")
    assert middleware.process_view(request, mfa_not_required(view), (), {}) is None


def _refused(response, *, to_login: bool) -> bool:
    if response.status_code in (401, 403, 404, 405):
        return True
    if response.status_code == 302:
        target = response["Location"]
        # Django admin sends to its own login URL, which only redirects to the desk's sign-in.
        allowed = ("/accounts/login/", "/admin/login/")
        if not to_login:
            allowed += ("/accounts/mfa/",)
        return target.startswith(allowed)
    return False


@pytest.mark.django_db
@pytest.mark.parametrize("url", [u for u in ALL_URLS if u not in PUBLIC])
@pytest.mark.parametrize("method", ["get", "post"])
def test_password_only_session_reaches_nothing_but_the_otp_step(password_only_client, url, method):
    response = getattr(password_only_client, method)(url)
    if url == "/accounts/mfa/":  # the OTP step itself: its form, never data
        assert response.status_code == 200 and "accounts/device_verify.html" in [t.name for t in response.templates]
        return
    if url == "/accounts/mfa/enrol/":  # the agent has an authenticator: no second one before the OTP step
        assert response.status_code == 302 and response["Location"] == "/accounts/mfa/"
        return
    if url in ("/accounts/logout/", "/admin/logout/"):  # signing out is a POST
        assert (response.status_code, response.get("Location")) == (
            (405, None) if method == "get" else (302, "/accounts/login/")
        )
        return
    assert _refused(response, to_login=False), (url, method, response.status_code, response.get("Location"))


@pytest.mark.django_db
@pytest.mark.parametrize("url", [u for u in ALL_URLS if u not in PUBLIC])
def test_anonymous_reaches_nothing_but_sign_in(client, url):
    response = client.get(url)
    assert _refused(response, to_login=True), (url, response.status_code, response.get("Location"))
