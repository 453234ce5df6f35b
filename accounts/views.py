import base64
import time
from urllib.parse import urlencode

import segno
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.decorators import REAUTH_SESSION_KEY, mfa_not_required, reauth_is_fresh, reauth_required
from accounts.forms import LoginForm, ReauthForm, TokenForm
from accounts.middleware import CURRENT_TENANT_KEY, session_sockets_end, session_start_clock
from accounts.models import User
from accounts.selectors import (
    mfa_authenticator_list,
    mfa_backup_codes_remaining,
    mfa_has_confirmed_authenticator,
    tenant_get_for,
)
from audit.masking import mask
from audit.models import Action
from audit.services import audit_record


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse(default)


@method_decorator(mfa_not_required, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class LoginView(auth_views.LoginView):
    """Step one: the password. Step two (the OTP) follows at once; nothing else is reachable before it."""

    template_name = "accounts/user_login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = False

    def get(self, request, *args, **kwargs):
        if request.user.is_authenticated and request.user.is_verified():
            return redirect("desk:home")
        return super().get(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)  # logs in, with a new session id
        session_start_clock(self.request)
        audit_record(action=Action.LOGIN, actor=self.request.user, metadata={"step": "password"})
        return response

    def form_invalid(self, form):
        _record_login_failed(form.data.get("username", ""))
        return super().form_invalid(form)

    def get_success_url(self):
        step = (
            "accounts:mfa_verify" if mfa_has_confirmed_authenticator(user=self.request.user) else "accounts:mfa_enrol"
        )
        next_url = self.get_redirect_url()
        url = reverse(step)
        return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def _record_login_failed(username: str) -> None:
    # The account aimed at, when it exists; otherwise the attempted name, masked (people type
    # their password into the username field).
    target = User.objects.filter(username=username).first()
    if target is not None:
        audit_record(action=Action.LOGIN_FAILED, target=target)
    else:
        audit_record(action=Action.LOGIN_FAILED, target_type="accounts.user", target_label=mask(username[:150]))


@login_not_required
@mfa_not_required
def locked_out(request, credentials=None, *args, **kwargs):
    """Axes' lockout answer (AXES_LOCKOUT_CALLABLE): recorded, and the same for every username."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    target = User.objects.filter(username=username).first()
    if target is not None:
        audit_record(action=Action.LOGIN_LOCKED, target=target)
    else:
        audit_record(action=Action.LOGIN_LOCKED, target_type="accounts.user", target_label=mask(username[:150]))
    return render(request, "accounts/user_locked.html", status=429)


@method_decorator(mfa_not_required, name="dispatch")
class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            audit_record(action=Action.LOGOUT, actor=request.user)
            session_sockets_end(request.session)
        return super().post(request, *args, **kwargs)


@mfa_not_required
@require_http_methods(["GET", "POST"])
def mfa_verify(request):
    """Step two of signing in: a code from the authenticator app, or a one-time backup code."""
    if request.user.is_verified():
        return redirect(_safe_next(request, "desk:home"))
    if not mfa_has_confirmed_authenticator(user=request.user):
        return redirect("accounts:mfa_enrol")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = services.mfa_verify(user=request.user, token=form.cleaned_data["token"])
        except services.MFAVerifyError as exc:
            form.add_error("token", exc.messages[0])
        else:
            otp_login(request, device)
            request.session.cycle_key()  # a new session id for the verified session, as at the password step
            if services.mfa_method(device) == "backup_code":
                left = mfa_backup_codes_remaining(user=request.user)
                messages.warning(request, f"You used a backup code. {left} left: make new ones from Security.")
            return redirect(_safe_next(request, "desk:home"))
    return render(request, "accounts/device_verify.html", {"form": form, "next": request.GET.get("next", "")})


@mfa_not_required
@require_http_methods(["GET", "POST"])
def mfa_enrol(request):
    """Set up an authenticator app (QR code in the page) and receive backup codes once.

    First enrolment happens right after the password step. Replacing a working authenticator is a
    sensitive action: it needs a passed OTP step and a fresh re-authentication.
    """
    has_device = mfa_has_confirmed_authenticator(user=request.user)
    if has_device:
        if not request.user.is_verified():
            return redirect("accounts:mfa_verify")
        if not reauth_is_fresh(request):
            return redirect(f"{reverse('accounts:reauth')}?{urlencode({'next': reverse('accounts:mfa_enrol')})}")
    device = services.mfa_enrolment_start(user=request.user)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = services.mfa_enrolment_confirm(user=request.user, device=device, token=form.cleaned_data["token"])
        except ValidationError as exc:
            form.add_error("token", exc.messages[0])
        else:
            device.refresh_from_db()
            otp_login(request, device)
            return render(request, "accounts/device_backup_codes.html", {"codes": codes, "first_time": not has_device})
    return render(
        request,
        "accounts/device_enrol.html",
        {
            "form": form,
            "qr_svg": _qr_svg(device),
            "secret": _base32_secret(device),
            "replacing": has_device,
        },
    )


def _qr_svg(device: TOTPDevice) -> str:
    # Rendered in the page: the secret never leaves for a QR service.
    return segno.make(device.config_url, error="m").svg_inline(scale=5, dark="#111", light="#fff", omitsize=False)


def _base32_secret(device: TOTPDevice) -> str:
    raw = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


@require_http_methods(["GET", "POST"])
def reauth(request):
    """Password and OTP again, before sensitive actions (changing MFA, exports)."""
    form = ReauthForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.reauth_check(
                request=request, password=form.cleaned_data["password"], token=form.cleaned_data["token"]
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            request.session.cycle_key()
            request.session[REAUTH_SESSION_KEY] = time.time()
            return redirect(_safe_next(request, "accounts:security"))
    return render(request, "accounts/user_reauth.html", {"form": form, "next": request.GET.get("next", "")})


def security(request):
    """The user's own MFA settings."""
    return render(
        request,
        "accounts/user_security.html",
        {
            "authenticators": mfa_authenticator_list(user=request.user),
            "backup_codes_left": mfa_backup_codes_remaining(user=request.user),
        },
    )


@require_POST
@reauth_required
def backup_codes_regenerate(request):
    codes = services.mfa_backup_codes_regenerate(user=request.user)
    return render(request, "accounts/device_backup_codes.html", {"codes": codes, "first_time": False})


@require_POST
def tenant_switch(request):
    """Work in another of the user's tenants. A tenant they do not belong to answers 404."""
    tenant = tenant_get_for(user=request.user, tenant_id=request.POST.get("tenant"))
    request.session[CURRENT_TENANT_KEY] = tenant.pk
    audit_record(action=Action.TENANT_SWITCHED, actor=request.user, tenant=tenant, target=tenant)
    return redirect(_safe_next(request, "desk:home"))
