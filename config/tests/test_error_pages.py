"""404, 403 and 500 pages in the site's layout, each with a way back to the desk."""

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.testing import TEST_PASSWORD

pytestmark = pytest.mark.django_db
HOME = reverse("desk:home")


def _in_layout_with_a_way_back(response) -> str:
    html = response.content.decode()
    assert 'class="topbar"' in html and "css/desk.css" in html  # the site's layout, not Django's plain text
    assert 'data-testid="error-back"' in html and f'href="{HOME}"' in html
    return html


def test_a_missing_page_is_404_in_the_layout(otp_client):
    response = otp_client.get("/no-such-page/")
    assert response.status_code == 404
    html = _in_layout_with_a_way_back(response)
    assert "We could not find that page" in html
    assert 'data-testid="role"' in html  # the signed-in person keeps their top bar


def test_a_refused_page_is_403_in_the_layout(admin_user):
    from accounts.testing import verified_client

    # BPO admins may see staff authenticators but not add one: Django admin answers 403.
    response = verified_client(admin_user).get(reverse("admin:otp_totp_totpdevice_add"))
    assert response.status_code == 403
    assert "You cannot do that here" in _in_layout_with_a_way_back(response)


def test_an_expired_form_is_403_in_the_layout_and_says_what_to_do(agent):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("accounts:login"), {"username": "agent", "password": TEST_PASSWORD})
    assert response.status_code == 403
    html = _in_layout_with_a_way_back(response)
    assert "That form had expired" in html and "reload the page" in html


def test_the_500_page_renders_without_a_request_context_or_the_database(django_assert_num_queries):
    from django.utils.module_loading import import_string

    from config.urls import handler500

    request = RequestFactory().get("/")
    with django_assert_num_queries(0):
        response = import_string(handler500)(request)
    assert response.status_code == 500
    assert "Something went wrong on our side" in _in_layout_with_a_way_back(response)


@pytest.mark.urls("config.tests.urls_failing")
def test_an_exception_in_a_view_answers_the_500_page_with_the_request_id(otp_client):
    otp_client.raise_request_exception = False
    response = otp_client.get("/fails/", HTTP_X_REQUEST_ID="support-ref-123")
    assert response.status_code == 500
    html = _in_layout_with_a_way_back(response)
    assert 'data-testid="request-id">support-ref-123<' in html and "boom" not in html
