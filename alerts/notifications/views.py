"""Providers' callbacks (public, no staff session): Twilio's delivery status and the tenant app's
push receipts; the development outbox page; delivery tests (drills)."""

import json
import logging
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import mfa_not_required
from accounts.selectors import bpo_admin_has_perm, tenant_ids_with_perm, user_has_tenant_perm
from alerts.keys import signature_problem
from alerts.notifications.channels import TwilioBackend, backend_for, twilio_signature
from alerts.notifications.models import Notification, State
from alerts.notifications.selectors import (
    DRILL_RUN_PERM,
    DRILL_VIEW_PERM,
    delivery_drill_list_for,
    delivery_drill_results,
    notification_for_push_receipt,
    outbox_backend_configured,
    outbox_list,
)
from alerts.notifications.services import delivery_drill_start, notification_status_record
from audit.decorators import audit_shown, shows_data

logger = logging.getLogger(__name__)

# Twilio's message and call statuses, as our states (None: not news).
TWILIO_STATES = {
    "sent": State.SENT,
    "delivered": State.DELIVERED,
    "read": State.DELIVERED,
    "undelivered": State.BOUNCED,  # taken, then refused by the carrier or the handset
    "failed": State.FAILED,
    "completed": State.DELIVERED,  # a call that was answered
    "busy": State.FAILED,
    "no-answer": State.FAILED,
    "canceled": State.FAILED,
}


@csrf_exempt  # signed by Twilio instead: X-Twilio-Signature
@login_not_required
@mfa_not_required
@require_POST
def twilio_status(request, notification_id: int):
    """Twilio's status callback for one notification (its id in the URL we gave Twilio). The
    signature is checked against the URL as we gave it (NOTIFICATION_PUBLIC_URL + path), with the
    auth token of the channel's backend; anything unsigned, or not ours, is 403 and changes nothing."""
    channel = Notification.objects.filter(pk=notification_id).values_list("channel", flat=True).first()
    backend = backend_for(channel) if channel else None
    token = backend.auth_token() if isinstance(backend, TwilioBackend) else ""
    url = settings.NOTIFICATION_PUBLIC_URL.rstrip("/") + request.get_full_path()
    params = {name: request.POST.get(name, "") for name in request.POST}
    given = request.headers.get("X-Twilio-Signature", "")
    if (
        not token
        or not given
        or not constant_time_compare(given, twilio_signature(auth_token=token, url=url, params=params))
    ):
        return HttpResponse(status=403)
    status = params.get("MessageStatus") or params.get("CallStatus") or ""
    state = TWILIO_STATES.get(status)
    if state is not None:
        code = params.get("ErrorCode", "")
        notification_status_record(
            notification_id=notification_id,
            state=state,
            provider_message_id=params.get("MessageSid") or params.get("CallSid") or "",
            code=f"twilio_{code}" if code.isdigit() else f"twilio_{status}",
        )
    return HttpResponse(status=204)


PUSH_RECEIPT_STATES = {"delivered": State.DELIVERED, "failed": State.FAILED}
PUSH_RECEIPT_MAX_BYTES = 2048


@csrf_exempt  # signed by the tenant instead: X-AlertDesk-Signature with its push secret
@login_not_required
@mfa_not_required
@require_POST
def push_receipt(request):
    """The tenant's app tells how a push went: JSON {"idempotency_key": <the push's key>, "state":
    "delivered" | "failed", "code": <optional, up to 64 characters>}, signed as the push was
    (X-AlertDesk-Timestamp, X-AlertDesk-Signature: sha256=HMAC of "<timestamp>.<body>" with the
    tenant's push secret, 5 minutes' tolerance). 204 when taken (a repeat changes nothing); 400 for
    a body that is not such JSON; 403, the same answer, for an unknown key or a bad, stale or
    other tenant's signature; 413 over 2 KB. A failure tries the customer's next channel."""
    if len(request.body) > PUSH_RECEIPT_MAX_BYTES:
        return HttpResponse(status=413)
    try:
        data = json.loads(request.body)
        key = uuid.UUID(str(data["idempotency_key"]))
        state = PUSH_RECEIPT_STATES[data["state"]]
        code = data.get("code") or ""
        if not isinstance(code, str) or len(code) > 64:
            raise ValueError("code")
    except (ValueError, TypeError, KeyError):
        return HttpResponseBadRequest(
            'Send JSON {"idempotency_key": "<uuid>", "state": "delivered" or "failed", "code": "<optional>"}.'
        )
    found = notification_for_push_receipt(idempotency_key=key)
    if found is None or signature_problem(request.headers, request.body, found[1]) is not None:
        return HttpResponse(status=403)
    notification_status_record(
        notification_id=found[0], state=state, code=f"push_{code}"[:100] if state == State.FAILED else ""
    )
    return HttpResponse(status=204)


@shows_data
@require_GET
def outbox_page(request):
    """What the development outbox stored, for BPO admins, in development only (the outbox
    backend configured and NOTIFICATION_OUTBOX_PAGE on): the messages as they were "sent", to
    their clear addresses, since showing what would reach a customer is the point. Anyone else,
    and everyone in production, gets 404. The view is recorded."""
    if not (request.user.is_bpo_admin and settings.NOTIFICATION_OUTBOX_PAGE and outbox_backend_configured()):
        raise Http404
    try:
        alert_id = int(request.GET["alert"]) if request.GET.get("alert") else None
        customer_id = int(request.GET["customer"]) if request.GET.get("customer") else None
    except ValueError:
        return HttpResponseBadRequest("Give an alert or customer id as a number.")
    limit = 200
    sent = list(outbox_list(alert_id=alert_id, customer_id=customer_id, limit=limit))
    audit_shown(request).objects(sent, target_type="alerts.outboxmessage")
    context = {"sent": sent, "alert_id": alert_id, "customer_id": customer_id, "limit": limit}
    return render(request, "alerts/outbox_list.html", context)


def _may_see_drills(user) -> bool:
    return bpo_admin_has_perm(user=user, perm=DRILL_VIEW_PERM) or bool(
        tenant_ids_with_perm(user=user, perm=DRILL_VIEW_PERM)
    )


@shows_data
@require_GET
def drill_list(request):
    """Delivery tests of the tenants the user may see them for (supervisors, admins): per channel,
    whether and how fast the test message arrived; and, for those who may, a button that runs one
    for the current tenant. Deny by default: 404 for a role without the right."""
    if not _may_see_drills(request.user):
        raise Http404
    drills = list(delivery_drill_list_for(user=request.user)[:50])
    audit_shown(request).objects(drills, target_type="alerts.deliverydrill")
    tenant = request.tenant or None
    context = {
        "drills": [(drill, delivery_drill_results(drill=drill)) for drill in drills],
        "can_run": tenant is not None and user_has_tenant_perm(user=request.user, tenant=tenant, perm=DRILL_RUN_PERM),
        "tenant": tenant,
    }
    return render(request, "alerts/deliverydrill_list.html", context)


@require_POST
def drill_run(request):
    """Run a delivery test for the current tenant (alerts.add_deliverydrill there)."""
    tenant = request.tenant or None
    if tenant is None or not _may_see_drills(request.user):
        raise Http404
    try:
        delivery_drill_start(tenant=tenant, actor=request.user)  # PermissionDenied: 403
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Delivery test sent. Reload to see the receipts.")
    return redirect("alerts:drill_list")
