"""The three reads every signed-in request makes (its session, its user, its OTP device) are
written once as SQL (accounts.sessions, accounts.backends, accounts.selectors): each must give what
the ORM read it replaced gives, and refuse what that refused."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.backends import StaffModelBackend
from accounts.models import User
from accounts.selectors import mfa_device_by_persistent_id
from accounts.sessions import SessionStore
from accounts.testing import verified_client

pytestmark = pytest.mark.django_db
PAGE = "/accounts/security/"  # a page any signed-in, verified staff member may open


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_a_session_reads_as_djangos_store_reads_it(agent):
    client = verified_client(agent)
    key = client.cookies["sessionid"].value
    ours, theirs = SessionStore(key), DjangoSessionStore(key)
    assert ours.load() == theirs.load() and ours[SESSION_KEY] == str(agent.pk)
    assert _fields(ours._get_session_from_db()) == _fields(Session.objects.get(session_key=key))


def test_an_expired_or_unknown_session_reads_as_none_and_forgets_its_key(agent):
    client = verified_client(agent)
    key = client.cookies["sessionid"].value
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    for unknown in (key, "x" * 32, "nope'; --"):
        store = SessionStore(unknown)
        assert store.load() == {}
        assert store.session_key is None
    # and the desk answers such a cookie as signed out
    response = client.get(PAGE)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_user_read_is_the_orms_and_refuses_inactive_and_unknown_users(agent):
    backend = StaffModelBackend()
    assert _fields(backend.get_user(agent.pk)) == _fields(User.objects.get(pk=agent.pk))
    assert backend.get_user(agent.pk)._state.adding is False  # a stored row, as from the ORM
    assert backend.get_user(0) is None and backend.get_user(2**62) is None
    User.objects.filter(pk=agent.pk).update(is_active=False)
    assert backend.get_user(agent.pk) is None


def test_the_user_comes_with_their_authenticator_devices_read_in_the_same_statement(agent, supervisor):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    backend = StaffModelBackend()
    second = TOTPDevice.objects.create(user=agent, name="Second phone", confirmed=False)
    TOTPDevice.objects.create(user=supervisor, name="Not theirs", confirmed=True)
    with CaptureQueriesContext(connection) as captured:
        user = backend.get_user(agent.pk)
    assert len(captured) == 1
    expected = {d.pk: _fields(d) for d in TOTPDevice.objects.filter(user=agent)}
    assert {pk: _fields(d) for pk, d in user.totp_devices.items()} == expected and second.pk in expected
    assert all(type(d) is TOTPDevice and not d._state.adding for d in user.totp_devices.values())
    assert _fields(user) == _fields(User.objects.get(pk=agent.pk))  # no device column left on the user
    TOTPDevice.objects.filter(user=agent).delete()
    assert backend.get_user(agent.pk).totp_devices == {}


def test_a_verified_request_reads_no_device_of_its_own(agent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = verified_client(agent)
    client.get(PAGE)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(PAGE).status_code == 200
    # the page itself lists the user's authenticators; what must be gone is the read of one by id
    by_id = re.compile(r'FROM "otp_totp_totpdevice" t\s+WHERE t\."id" =|"otp_totp_totpdevice"\."id" = ')
    assert not [q["sql"] for q in captured if by_id.search(q["sql"])]


def test_a_deactivated_users_open_session_is_signed_out(agent):
    client = verified_client(agent)
    assert client.get(PAGE).status_code == 200
    User.objects.filter(pk=agent.pk).update(is_active=False)
    response = client.get(PAGE)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_device_read_is_django_otps(agent):
    device = TOTPDevice.objects.get(user=agent)
    ours = mfa_device_by_persistent_id(device.persistent_id)
    assert type(ours) is TOTPDevice
    assert _fields(ours) == _fields(Device.from_persistent_id(device.persistent_id))
    static = StaticDevice.objects.create(user=agent, name="Backup codes")
    assert _fields(mfa_device_by_persistent_id(static.persistent_id)) == _fields(static)  # django_otp's own read


@pytest.mark.parametrize(
    "persistent_id",
    [
        "otp_totp.totpdevice/0",
        "otp_totp.totpdevice/abc",
        "otp_totp.totpdevice/-1",
        "otp_totp.totpdevice/²",
        "otp_totp.totpdevice/" + "9" * 30,
        "otp_totp.totpdevice/",
        "otp_totp.totpdevice",
        "nosuch.model/1",
        "",
    ],
)
def test_a_made_up_device_id_names_no_device(agent, persistent_id):
    assert mfa_device_by_persistent_id(persistent_id) is None
    theirs = {d.pk: d for d in TOTPDevice.objects.filter(user=agent)}
    assert mfa_device_by_persistent_id(persistent_id, totp_devices=theirs) is None  # as read with the user


def test_a_device_read_with_the_user_is_taken_from_them_and_no_other(agent, supervisor):
    mine, other = TOTPDevice.objects.get(user=agent), TOTPDevice.objects.get(user=supervisor)
    theirs = {mine.pk: mine}
    assert mfa_device_by_persistent_id(mine.persistent_id, totp_devices=theirs) is mine
    assert mfa_device_by_persistent_id(other.persistent_id, totp_devices=theirs) is None


def test_a_session_whose_device_is_gone_or_another_users_is_sent_to_the_otp_step(agent, supervisor):
    client = verified_client(agent)
    assert client.get(PAGE).status_code == 200
    session = client.session
    session["otp_device_id"] = TOTPDevice.objects.get(user=supervisor).persistent_id
    session.save()
    response = client.get(PAGE)
    assert response.status_code == 302 and "/accounts/mfa/" in response["Location"]
    client = verified_client(agent)
    TOTPDevice.objects.filter(user=agent).delete()
    response = client.get(PAGE)
    assert response.status_code == 302 and "/accounts/mfa/" in response["Location"]
