"""Signing in: password, OTP step, enrolment, lockout, session lifetime, re-authentication."""

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.demo import totp_now
from accounts.forms import SIGN_IN_FAILED
from accounts.middleware import SESSION_SEEN_KEY, SESSION_STARTED_KEY
from accounts.testing import TEST_PASSWORD, make_staff, totp_code_for, verified_client
from audit.models import Action, AuditEvent

LOGIN = reverse("accounts:login")
VERIFY = reverse("accounts:mfa_verify")
ENROL = reverse("accounts:mfa_enrol")
HOME = reverse("desk:home")


def reaches_desk(client) -> bool:
    """The desk answers this client (its home sends it on to its first queue), not the sign-in steps."""
    response = client.get(HOME, follow=True)
    return response.status_code == 200 and response.resolver_match.app_name == "desk"


pytestmark = pytest.mark.django_db


def login(client, username, password=TEST_PASSWORD, ip="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_password_then_totp_reaches_the_desk(agent, tenant_a):
    client = Client()
    response = login(client, "agent")
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)
    # Before the OTP step the desk is out of reach.
    assert client.get(HOME)["Location"].startswith(VERIFY)

    response = client.post(VERIFY, {"token": totp_code_for(agent)})
    assert response.status_code == 302
    page = client.get(HOME, follow=True)
    assert page.status_code == 200 and page.resolver_match.view_name == "desk:queue"  # their first queue
    assert b"Tenant A" in page.content
    assert b"Agent" in page.content


def test_wrong_otp_code_is_refused_with_a_clear_message(agent):
    client = Client()
    login(client, "agent")
    response = client.post(VERIFY, {"token": "000000" if totp_code_for(agent) != "000000" else "111111"})
    assert response.status_code == 200
    assert b"That code is not right" in response.content
    assert not reaches_desk(client)


def test_next_is_kept_through_both_steps_but_never_offsite(agent):
    client = Client()
    response = client.post(
        f"{LOGIN}?next=/accounts/security/",
        {"username": "agent", "password": TEST_PASSWORD, "next": "/accounts/security/"},
    )
    assert "next=%2Faccounts%2Fsecurity%2F" in response["Location"]
    response = client.post(f"{VERIFY}?next=https://evil.example/", {"token": totp_code_for(agent)})
    assert response["Location"] == HOME


def test_wrong_password_and_unknown_user_get_the_same_answer(agent):
    wrong = login(Client(), "agent", password="not-the-password")
    unknown = login(Client(), "nobody-here", password="not-the-password")
    assert wrong.status_code == unknown.status_code == 200
    for response in (wrong, unknown):
        assert SIGN_IN_FAILED in response.content.decode()


def test_inactive_user_gets_the_same_answer_as_a_wrong_password(agent):
    services.user_deactivate(user=agent)
    response = login(Client(), "agent")
    assert response.status_code == 200
    assert SIGN_IN_FAILED in response.content.decode()


def test_new_session_id_at_login(agent):
    client = Client()
    client.get(LOGIN)
    client.session.save()
    before = client.session.session_key
    login(client, "agent")
    assert client.session.session_key != before


def test_backup_code_works_once(agent):
    codes = services.mfa_backup_codes_regenerate(user=agent)
    client = Client()
    login(client, "agent")
    assert client.post(VERIFY, {"token": codes[0]}).status_code == 302
    assert reaches_desk(client)
    assert not StaticToken.objects.filter(token=codes[0]).exists()

    again = Client()
    login(again, "agent")
    response = again.post(VERIFY, {"token": codes[0]})
    assert response.status_code == 200
    assert not reaches_desk(again)


def test_first_login_enrols_an_authenticator_and_shows_backup_codes_once(tenant_a):
    user = make_staff("newbie", role="agent", tenants=[tenant_a], enrolled=False)
    client = Client()
    response = login(client, "newbie")
    assert response["Location"].startswith(ENROL)
    assert client.get(HOME)["Location"].startswith(ENROL)

    page = client.get(ENROL)
    assert page.status_code == 200
    assert b"<svg" in page.content  # QR rendered in the page, not fetched from a service
    device = TOTPDevice.objects.get(user=user, confirmed=False)

    bad = client.post(ENROL, {"token": "12"})
    assert bad.status_code == 200
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed

    done = client.post(ENROL, {"token": totp_now(device)})
    assert done.status_code == 200
    assert done.context["codes"] and len(done.context["codes"]) == 10
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert reaches_desk(client)
    # The codes were shown once: no page shows them again.
    assert done.context["codes"][0].encode() not in client.get(reverse("accounts:security")).content


def test_user_with_an_authenticator_cannot_enrol_another_before_the_otp_step(agent):
    client = Client()
    login(client, "agent")
    assert client.get(ENROL)["Location"] == VERIFY
    assert TOTPDevice.objects.filter(user=agent).count() == 1


def test_lockout_by_username_and_ip_with_a_generic_message(agent, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "agent", password="wrong-password", ip="10.0.0.9")
    locked = login(client, "agent", ip="10.0.0.9")  # even the right password
    assert locked.status_code == 429
    assert b"Sign-in paused" in locked.content
    assert b"agent" not in locked.content.split(b"<main", 1)[1]

    # Same floor (same NAT address), another agent: not locked.
    make_staff("colleague")
    assert login(Client(), "colleague", ip="10.0.0.9")["Location"].startswith(VERIFY)
    # Same agent from another address: not locked.
    assert login(Client(), "agent", ip="10.0.0.10")["Location"].startswith(VERIFY)


def test_unknown_usernames_lock_out_the_same_way(db, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "ghost", password="wrong-password", ip="10.0.0.9")
    assert login(client, "ghost", password="wrong-password", ip="10.0.0.9").status_code == 429


def test_lockout_cools_off(agent, settings):
    from axes.models import AccessAttempt
    from django.utils import timezone

    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(Client(), "agent", password="wrong-password")
    assert login(Client(), "agent").status_code == 429
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timezone.timedelta(seconds=1)
    )
    assert login(Client(), "agent")["Location"].startswith(VERIFY)


def _age_session(client, *, started=0, seen=0):
    session = client.session
    now = int(time.time())
    session[SESSION_STARTED_KEY] = now - started
    session[SESSION_SEEN_KEY] = now - seen
    session.save()


def test_session_ends_after_idle_time(agent, settings):
    client = verified_client(agent)
    _age_session(client, seen=int(settings.SESSION_IDLE_TIMEOUT.total_seconds()) - 5)
    assert reaches_desk(client)
    _age_session(client, seen=int(settings.SESSION_IDLE_TIMEOUT.total_seconds()) + 5)
    response = client.get(HOME, follow=True)
    assert response.redirect_chain[0][0].startswith(LOGIN)
    assert b"Your session has expired" in response.content


def test_session_ends_after_its_absolute_lifetime_even_when_active(agent, settings):
    client = verified_client(agent)
    _age_session(client, started=int(settings.SESSION_ABSOLUTE_LIFETIME.total_seconds()) + 5, seen=1)
    assert client.get(HOME)["Location"].startswith(LOGIN)


def test_session_cookie_ends_at_browser_close(agent):
    client = Client()
    login(client, "agent")
    cookie = client.cookies["sessionid"]
    assert cookie["expires"] == "" and cookie["max-age"] == ""
    assert cookie["httponly"]


def test_deactivating_a_user_ends_their_session_at_once(agent):
    client = verified_client(agent)
    assert reaches_desk(client)
    services.user_deactivate(user=agent)
    assert client.get(HOME)["Location"].startswith(LOGIN)


def test_logout_ends_the_session(otp_client):
    assert otp_client.post(reverse("accounts:logout")).status_code == 302
    assert otp_client.get(HOME)["Location"].startswith(LOGIN)


def test_signing_out_of_django_admin_is_the_desk_sign_out(admin_user):
    client = verified_client(admin_user)
    with mock.patch("accounts.views.session_sockets_end") as sockets_end:
        assert client.post("/admin/logout/")["Location"] == reverse("accounts:login")
    sockets_end.assert_called_once()
    assert AuditEvent.objects.filter(action=Action.LOGOUT, actor=admin_user).count() == 1
    assert client.get(HOME)["Location"].startswith(LOGIN)


class TestReauthentication:
    def test_new_backup_codes_need_password_and_otp_again(self, agent):
        client = verified_client(agent)
        url = reverse("accounts:backup_codes_regenerate")
        response = client.post(url)
        assert response["Location"].startswith(reverse("accounts:reauth"))
        assert not StaticToken.objects.filter(device__user=agent).exists()

        wrong = client.post(reverse("accounts:reauth"), {"password": "nope-nope-nope", "token": totp_code_for(agent)})
        assert wrong.status_code == 200
        assert b"did not match" in wrong.content

        ok = client.post(
            f"{reverse('accounts:reauth')}?next={url}",
            {"password": TEST_PASSWORD, "token": totp_code_for(agent), "next": reverse("accounts:security")},
        )
        assert ok.status_code == 302
        response = client.post(url)
        assert response.status_code == 200
        assert StaticToken.objects.filter(device__user=agent).count() == 10

    def test_reauth_expires(self, agent, settings):
        client = verified_client(agent)
        client.post(reverse("accounts:reauth"), {"password": TEST_PASSWORD, "token": totp_code_for(agent)})
        session = client.session
        session["reauth_at"] = time.time() - settings.REAUTH_MAX_AGE.total_seconds() - 1
        session.save()
        assert client.post(reverse("accounts:backup_codes_regenerate")).status_code == 302

    def test_replacing_the_authenticator_keeps_the_old_one_until_the_new_one_is_confirmed(self, agent):
        old = TOTPDevice.objects.get(user=agent)
        client = verified_client(agent)
        assert client.get(ENROL)["Location"].startswith(reverse("accounts:reauth"))
        client.post(reverse("accounts:reauth"), {"password": TEST_PASSWORD, "token": totp_now(old)})
        page = client.get(ENROL)
        assert page.status_code == 200 and page.context["replacing"]
        new = TOTPDevice.objects.get(user=agent, confirmed=False)
        assert TOTPDevice.objects.filter(pk=old.pk, confirmed=True).exists()

        client.post(ENROL, {"token": totp_now(new)})
        assert list(TOTPDevice.objects.filter(user=agent).values_list("pk", "confirmed")) == [(new.pk, True)]


def _throttle(user, failures: int) -> None:
    """As django-otp leaves an authenticator after `failures` wrong codes in a row, the last just now."""
    TOTPDevice.objects.filter(user=user).update(
        throttling_failure_count=failures, throttling_failure_timestamp=timezone.now()
    )


def test_repeated_wrong_codes_throttle_the_otp_step_and_say_how_long_to_wait(agent):
    client = Client()
    login(client, "agent")
    right = totp_code_for(agent)
    wrong = "000000" if right != "000000" else "111111"
    client.post(VERIFY, {"token": wrong})
    assert TOTPDevice.objects.get(user=agent).throttling_failure_count == 1
    _throttle(agent, 4)  # the 4th wrong code in a row: 2**3 = 8 seconds before the next is checked
    # Throttled: for a while even the right code is refused, so six digits cannot be brute-forced,
    # and the person is told how long to wait rather than that their right code is wrong.
    response = client.post(VERIFY, {"token": right})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Wait 8 seconds, then enter a new code." in html and "That code is not right" not in html
    assert not reaches_desk(client)

    TOTPDevice.objects.filter(user=agent).update(throttling_failure_timestamp=timezone.now() - timedelta(seconds=9))
    assert client.post(VERIFY, {"token": totp_code_for(agent)}).status_code == 302
    assert reaches_desk(client)


def test_reauth_says_how_long_to_wait_when_throttled(agent):
    client = verified_client(agent)
    _throttle(agent, 1)
    response = client.post(reverse("accounts:reauth"), {"password": TEST_PASSWORD, "token": totp_code_for(agent)})
    assert response.status_code == 200
    assert "Wait 1 second, then enter a new code." in response.content.decode()


def test_new_session_id_at_the_otp_step(agent):
    client = Client()
    login(client, "agent")
    before = client.session.session_key
    assert client.post(VERIFY, {"token": totp_code_for(agent)}).status_code == 302
    assert client.session.session_key != before
    assert reaches_desk(client)  # the new session carries the passed OTP step


def test_sign_in_forms_enforce_csrf(agent):
    client = Client(enforce_csrf_checks=True)
    assert client.post(LOGIN, {"username": "agent", "password": TEST_PASSWORD}).status_code == 403
    page = client.get(LOGIN)
    token = page.cookies["csrftoken"].value
    response = client.post(LOGIN, {"username": "agent", "password": TEST_PASSWORD, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
