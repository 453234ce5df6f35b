"""View markers for the MFA wall and for re-authentication before sensitive actions."""

import functools
import time
from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

REAUTH_SESSION_KEY = "reauth_at"


def mfa_not_required(view):
    """Let a logged-in user who has not passed the OTP step reach this view (the MFA pages)."""
    view.mfa_not_required = True
    return view


def reauth_is_fresh(request) -> bool:
    at = request.session.get(REAUTH_SESSION_KEY)
    return at is not None and time.time() - at <= settings.REAUTH_MAX_AGE.total_seconds()


def reauth_required(view):
    """Ask for the password and an OTP code again unless the user gave them in the last few minutes."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not reauth_is_fresh(request):
            return redirect(f"{reverse('accounts:reauth')}?{urlencode({'next': request.get_full_path()})}")
        return view(request, *args, **kwargs)

    return wrapper
