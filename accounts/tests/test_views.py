"""The tenant switcher, the desk shell and Django admin, as each role and another tenant's staff."""

import pytest
from django.urls import reverse

from accounts.models import Role
from accounts.testing import make_staff, verified_client

pytestmark = pytest.mark.django_db
HOME = reverse("desk:home")
SWITCH = reverse("accounts:tenant_switch")


def test_desk_shows_the_user_their_tenant_and_role(otp_client):
    page = otp_client.get(HOME, follow=True)  # their first queue
    assert page.status_code == 200 and page.resolver_match.view_name == "desk:queue"
    html = page.content.decode()
    assert 'data-testid="tenant-name">Tenant A<' in html
    assert 'data-testid="role">Agent<' in html and '<span class="user-name">agent</span>' in html
    assert "tenant-select" not in html  # one tenant: no switcher


def test_the_home_sends_an_agent_to_the_first_queue_of_the_tenant_they_work_in(tenant_a, tenant_b):
    from desk.models import Queue

    user = make_staff("both", role=Role.AGENT, tenants=[tenant_a, tenant_b], default_queue=True)
    client = verified_client(user)
    first = Queue.objects.get(tenant=tenant_a, is_default=True)
    assert client.get(HOME)["Location"] == reverse("desk:queue", args=[first.pk])
    client.post(SWITCH, {"tenant": tenant_b.pk, "next": "/"})
    other = Queue.objects.get(tenant=tenant_b, is_default=True)
    assert client.get(HOME)["Location"] == reverse("desk:queue", args=[other.pk])


def test_without_a_queue_the_desk_shows_no_alert_and_says_how_to_get_one(tenant_a, tenant_b):
    from alerts.tests.factories import AlertFactory, CustomerFactory

    AlertFactory(customer=CustomerFactory(tenant=tenant_a))
    idle = make_staff("idle", role=Role.AGENT, tenants=[tenant_a])  # a membership, no queue granted
    page = verified_client(idle).get(HOME)
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="desk-tenant">Tenant A<' in html
    assert "You have no queues yet: ask a supervisor to grant you one." in html
    assert "alert" not in html.split('<main id="main"', 1)[1].lower()  # no alert, no count of them


def test_the_top_bar_has_only_working_links(otp_client):
    html = otp_client.get(HOME, follow=True).content.decode()
    nav = html[html.index('<nav class="mainnav"') : html.index("</nav>")]
    assert ">Alerts<" not in nav and ">Cases<" not in nav and "nav-soon" not in nav
    assert nav.count("<li>") == nav.count("<li><a href=")  # every item is a link


def test_staff_in_two_tenants_switch_between_them(tenant_a, tenant_b):
    user = make_staff("both", role=Role.AGENT, tenants=[tenant_a, tenant_b])
    client = verified_client(user)
    page = client.get(HOME).content.decode()
    assert 'id="tenant-select"' in page
    response = client.post(SWITCH, {"tenant": tenant_b.pk, "next": "/"})
    assert response.status_code == 302
    assert 'data-testid="desk-tenant">Tenant B<' in client.get(HOME).content.decode()


@pytest.mark.parametrize("bad", ["foreign", "999999", "abc", ""])
def test_switching_to_a_tenant_one_does_not_belong_to_is_404(otp_client, tenant_b, bad):
    value = str(tenant_b.pk) if bad == "foreign" else bad
    assert otp_client.post(SWITCH, {"tenant": value}).status_code == 404
    assert 'data-testid="tenant-name">Tenant A<' in otp_client.get(HOME, follow=True).content.decode()


def test_switch_is_post_only(otp_client, tenant_a):
    assert otp_client.get(SWITCH, {"tenant": tenant_a.pk}).status_code == 405


def test_a_tenant_deactivated_mid_session_disappears_from_the_desk(otp_client, tenant_a):
    from accounts.services import tenant_set_active

    tenant_set_active(tenant=tenant_a, is_active=False)
    page = otp_client.get(HOME).content.decode()
    assert "Tenant A" not in page
    assert "not a member of any client tenant" in page


def test_django_admin_is_for_verified_bpo_admins_only(admin_user, supervisor, agent):
    assert verified_client(admin_user).get("/admin/").status_code == 200
    for user in (supervisor, agent):
        response = verified_client(user).get("/admin/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_admin_membership_change_goes_through_the_service(admin_user, agent, tenant_b):
    client = verified_client(admin_user)
    response = client.post(
        reverse("admin:accounts_membership_add"), {"user": agent.pk, "tenant": tenant_b.pk, "role": Role.SUPERVISOR}
    )
    assert response.status_code == 302, response.content[:2000]
    assert agent.memberships.get(tenant=tenant_b).role == Role.SUPERVISOR


def test_security_page_counts_backup_codes_without_showing_them(agent, otp_client):
    from accounts.services import mfa_backup_codes_regenerate

    codes = mfa_backup_codes_regenerate(user=agent)
    page = otp_client.get(reverse("accounts:security")).content.decode()
    assert 'data-testid="backup-codes-left">10<' in page
    assert not any(code in page for code in codes)


def test_desk_home_query_budget(otp_client, django_assert_max_num_queries):
    otp_client.get(HOME)
    with django_assert_max_num_queries(8):  # session, user, device, the user's queues, and the redirect
        assert otp_client.get(HOME).status_code == 302
