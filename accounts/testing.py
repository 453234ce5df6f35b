"""Helpers for tests (unit and browser): staff users made through the services, verified clients."""

from types import SimpleNamespace

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.demo import totp_now
from accounts.middleware import session_start_clock
from accounts.models import Role

TEST_PASSWORD = "correct-horse-battery-staple-42"


def make_staff(username, *, role=None, tenants=(), bpo_admin=False, enrolled=True, default_queue=False):
    """A staff user made through the services. With `default_queue=True` an agent is also granted
    each tenant's default queue, as `add_staff` does by default."""
    from desk.services import queue_grant_default  # test helper: the desk is installed alongside

    user = services.user_create(username=username, password=TEST_PASSWORD, is_bpo_admin=bpo_admin)
    for tenant in tenants:
        services.membership_set(user=user, tenant=tenant, role=role)
        if role == Role.AGENT and default_queue:
            queue_grant_default(tenant=tenant, user=user)
    if enrolled:
        TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    return user


def totp_code_for(user) -> str:
    return totp_now(TOTPDevice.objects.get(user=user, confirmed=True))


def verified_client(user) -> Client:
    """A client logged in with password and past the OTP step, as a browser would be."""
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user, confirmed=True).persistent_id
    session_start_clock(SimpleNamespace(session=session))  # as the password step does
    session.save()
    return client
