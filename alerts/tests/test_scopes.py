"""A BPO admin's group holds alerts.view_alert only: they read every tenant's alerts but work none."""

import pytest

from accounts.testing import verified_client
from alerts.models import AlertStatus
from alerts.tests.test_alert_apis import LIST, raised  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("step, body", [("acknowledge", {}), ("resolve", {}), ("dismiss", {"note": "not a threat"})])
def test_a_bpo_admin_may_read_alerts_but_not_change_them(admin_user, raised, tenant_a, step, body):  # noqa: F811
    client = verified_client(admin_user)
    alert = raised[tenant_a.pk]
    assert client.get(f"{LIST}{alert.pk}/").status_code == 200
    response = client.post(f"{LIST}{alert.pk}/{step}/", body, content_type="application/json")
    assert (response.status_code, response.json()) == (
        403,
        {"detail": "Your role may not do this to alerts of this client."},
    )  # they see it (403), as the staff API contract says, where another tenant's id answers 404
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_an_agent_of_the_tenant_still_may(otp_client, raised, tenant_a):  # noqa: F811
    alert = raised[tenant_a.pk]
    response = otp_client.post(f"{LIST}{alert.pk}/acknowledge/", {}, content_type="application/json")
    assert response.status_code == 200 and response.json()["status"] == "acknowledged"
