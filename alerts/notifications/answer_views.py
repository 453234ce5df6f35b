"""The customer's side of "Was this you?": the public answer page (`/r/<token>/`) and the SMS reply
webhook. No staff session: the signed token (or Twilio's signature) is the access check.

The page works without JavaScript (one form, two buttons), under the site's strict CSP, and says
only what the customer needs. Every answer of these views carries `Cache-Control: no-store`,
`Referrer-Policy: no-referrer` (the token is in the address) and `X-Robots-Tag: noindex`; the
token stays out of the logs (the access log shows the route, not the address, and Django's own 4xx
warnings, which would print the path, are not written for these views).

(Named answer_views, not views: the delivery core's provider callbacks are alerts.notifications.views.)
"""

import functools

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.crypto import constant_time_compare
from django.utils.decorators import decorator_from_middleware
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import mfa_not_required
from alerts.notifications import answers
from alerts.notifications.answers import AnswerTokenInvalid
from config.http import client_ip


def _public(log_path: str):
    """A public view of the answer: no login, no MFA step, the headers above on every answer
    (refusals included), and `log_path` instead of the address in the access log."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            request.log_path = log_path
            response = view(request, *args, **kwargs)
            add_never_cache_headers(response)
            response["Referrer-Policy"] = "no-referrer"
            response["X-Robots-Tag"] = "noindex, nofollow"
            response._has_been_logged = True  # django.request would log the path (the token) of a 4xx
            return response

        return login_not_required(mfa_not_required(wrapper))

    return decorate


class _AnswerCsrf(CsrfViewMiddleware):
    """Django's CSRF check, with two changes for the answer page. Its `Referrer-Policy: no-referrer`
    makes browsers send the form with `Origin: null` and no Referer, which Django's origin check
    refuses: "null" is let through to the token check, which stays (the cookie's token against the
    form's; the cookie is SameSite=Lax, so a form posted from another site carries none and fails).
    And a refusal shows the customer a page of their own, not the desk's."""

    def _origin_verified(self, request):
        return request.META.get("HTTP_ORIGIN") == "null" or super()._origin_verified(request)

    def _reject(self, request, reason):
        return render(request, "alerts/answer_form_expired.html", status=403)


_answer_csrf = decorator_from_middleware(_AnswerCsrf)


def _invalid(request, error: AnswerTokenInvalid):
    answers.answer_rate_failed(ip=client_ip(request))
    if error.reason == AnswerTokenInvalid.FORGED:
        return render(request, "alerts/answer_unknown.html", status=404)
    page = answers.answer_page_for(notification=error.notification)
    answers.answer_page_record_view(notification=error.notification)  # it says what the alert was about
    return render(request, "alerts/answer_gone.html", {"page": page, "reason": error.reason}, status=410)


@csrf_exempt  # checked by _answer_csrf instead (see there)
@_public("/r/<token>/")
@require_http_methods(["GET", "POST"])
@_answer_csrf
def answer_page(request, token: str):
    """GET: the question. POST `answer=yes|no`: the answer, recorded and acted on; the thanks, or the
    steps to secure the account. A used, expired or forged link: 410 or 404, nothing changed."""
    if not answers.answer_rate_allowed(ip=client_ip(request), token=token):
        response = render(request, "alerts/answer_limited.html", status=429)
        response["Retry-After"] = str(answers.answer_retry_after())
        return response
    try:
        notification = answers.notification_get_by_answer_token(token=token)
    except AnswerTokenInvalid as error:
        return _invalid(request, error)
    if request.method == "GET":
        page = answers.answer_page_for(notification=notification)
        answers.answer_page_record_view(notification=notification)
        return render(request, "alerts/answer_question.html", {"page": page})
    answer = request.POST.get("answer", "")
    if answer not in answers.ANSWER_LABELS:
        page = answers.answer_page_for(notification=notification)
        return render(request, "alerts/answer_question.html", {"page": page, "invalid": True}, status=400)
    try:
        result = answers.notification_answer(notification_id=notification.pk, answer=answer, via="link")
    except AnswerTokenInvalid as error:  # answered meanwhile (another tab, an SMS reply)
        return _invalid(request, error)
    page = answers.answer_page_for(notification=result.notification)
    template = "alerts/answer_thanks.html" if answer == answers.YES else "alerts/answer_secure.html"
    return render(request, template, {"page": page, "result": result})


# It records what it shows itself (the customer is no staff user, so @shows_data's actor and role do
# not fit): a view of the question or of a used link's page (answer_page_record_view), and an
# answer's page through the answer's own record.
answer_page.audit_shows_data = True


def _twiml(text: str | None) -> HttpResponse:
    body = f"<Message>{escape(text)}</Message>" if text else ""
    return HttpResponse(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>', content_type="text/xml; charset=utf-8"
    )


@csrf_exempt  # signed by Twilio instead: X-Twilio-Signature
@_public("/r/sms/twilio/")
@require_POST
def answer_sms_twilio(request):
    """Twilio's inbound-message webhook: a customer's YES or NO reply to an alert's SMS. The
    signature is checked against the address as Twilio was given it (NOTIFICATION_PUBLIC_URL and
    the path) with TWILIO_AUTH_TOKEN: anything unsigned or signed otherwise is 403 and changes
    nothing. The answer is TwiML: the text sent back to the customer, or nothing."""
    auth_token = settings.TWILIO_AUTH_TOKEN
    given = request.headers.get("X-Twilio-Signature", "")
    url = settings.NOTIFICATION_PUBLIC_URL.rstrip("/") + request.get_full_path()
    if not auth_token or not given:
        return HttpResponse(status=403)
    expected = answers.twilio_signature(auth_token=auth_token, url=url, params=request.POST)
    if not constant_time_compare(given, expected):
        return HttpResponse(status=403)
    reply = answers.answer_sms_receive(
        from_number=request.POST.get("From", ""),
        body=request.POST.get("Body", ""),
        message_sid=request.POST.get("MessageSid", ""),
    )
    return _twiml(reply)
