import functools
import secrets
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.middleware import OTPMiddleware as DjangoOTPMiddleware
from django_otp.middleware import is_verified as otp_is_verified

from accounts.selectors import (
    mfa_device_by_persistent_id,
    mfa_has_confirmed_authenticator,
    request_memo_start,
    tenant_access_for,
)
from audit.models import Action
from audit.services import audit_record
from config import push

SESSION_STARTED_KEY = "auth_started_at"
SESSION_SEEN_KEY = "auth_seen_at"
# A random id naming the session's group of desk connections; it survives the key's rotation and
# reveals nothing of the key.
SESSION_PUSH_KEY = "push_id"
CURRENT_TENANT_KEY = "tenant_id"
# Refresh the idle clock at most this often, so that a page of requests is not a page of writes.
_SEEN_RESOLUTION = 60


def session_start_clock(request) -> None:
    now = int(time.time())
    request.session[SESSION_STARTED_KEY] = now
    request.session[SESSION_SEEN_KEY] = now
    request.session[SESSION_PUSH_KEY] = secrets.token_urlsafe(16)


def session_sockets_end(session, *, reason: str = push.SIGNED_OUT) -> None:
    """Close the session's open desk connections once the current transaction commits. Call it
    before logout(), which flushes the session."""
    if push_id := session.get(SESSION_PUSH_KEY):
        push.session_end(push_id=push_id, reason=reason)


class SessionLifetimeMiddleware:
    """End a staff session after idle time and after an absolute lifetime, whichever comes first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = int(time.time())
            started = request.session.get(SESSION_STARTED_KEY)
            seen = request.session.get(SESSION_SEEN_KEY)
            if started is None or seen is None:
                session_start_clock(request)
            elif (
                now - seen > settings.SESSION_IDLE_TIMEOUT.total_seconds()
                or now - started > settings.SESSION_ABSOLUTE_LIFETIME.total_seconds()
            ):
                audit_record(action=Action.SESSION_EXPIRED, actor=request.user)
                session_sockets_end(request.session, reason=push.EXPIRED)
                logout(request)
                messages.info(request, "Your session has expired. Please sign in again.")
            elif now - seen >= _SEEN_RESOLUTION:
                request.session[SESSION_SEEN_KEY] = now
            if request.user.is_authenticated and SESSION_PUSH_KEY not in request.session:
                request.session[SESSION_PUSH_KEY] = secrets.token_urlsafe(16)  # a session from before push ids
        return self.get_response(request)


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


class OTPMiddleware(DjangoOTPMiddleware):
    """django_otp's: `request.user.otp_device` and `is_verified()`. The session's device is taken
    from the user's own authenticator-app devices when the backend read them with the user
    (accounts.backends: no statement of its own); any other device is read through the selector
    the WebSocket's session check uses. _verify_user is django_otp's (1.x), line for line, but
    for where the device comes from."""

    def _verify_user(self, request, user):
        user.otp_device = None
        user.is_verified = functools.partial(otp_is_verified, user)
        if user.is_authenticated:
            persistent_id = request.session.get(DEVICE_ID_SESSION_KEY)
            devices = getattr(user, "totp_devices", None)  # read with the user (accounts.backends)
            device = mfa_device_by_persistent_id(persistent_id, totp_devices=devices) if persistent_id else None
            if (device is not None) and (device.user_id != user.pk):
                device = None
            if (device is None) and (DEVICE_ID_SESSION_KEY in request.session):
                del request.session[DEVICE_ID_SESSION_KEY]
            user.otp_device = device
        return user


class MFARequiredMiddleware:
    """No view answers a password-only session, except those marked @mfa_not_required.

    Runs after LoginRequiredMiddleware, so anonymous users have been sent to the login page already.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not getattr(view_func, "login_required", True) or getattr(view_func, "mfa_not_required", False):
            return None
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        if _is_api(request):
            return JsonResponse({"detail": "Two-factor authentication is required."}, status=403)
        step = "accounts:mfa_verify" if mfa_has_confirmed_authenticator(user=user) else "accounts:mfa_enrol"
        return redirect(f"{reverse(step)}?{urlencode({'next': request.get_full_path()})}")


class CurrentTenantMiddleware:
    """`request.tenant`: the tenant the user is working in (chosen with the switcher), or None;
    `request.tenant_role`: their role there. Both from the user's tenant access, read once for the
    request (the access functions read the same, through the memo started here)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            request_memo_start(request.user)
        request.tenants = SimpleLazyObject(lambda: list(tenant_access_for(user=request.user).tenants))
        request.tenant = SimpleLazyObject(lambda: _current_tenant(request))
        request.tenant_role = SimpleLazyObject(
            lambda: tenant_access_for(user=request.user).role_in(request.tenant) if request.tenant else None
        )
        return self.get_response(request)


def _current_tenant(request):
    if not request.user.is_authenticated:
        return None
    tenants = request.tenants
    wanted = request.session.get(CURRENT_TENANT_KEY)
    for tenant in tenants:
        if tenant.pk == wanted:
            return tenant
    return tenants[0] if tenants else None
