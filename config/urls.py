from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from accounts.views import LogoutView
from alerts.notifications.receipts import tracking_urlpatterns
from config import health, views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("favicon.ico", views.favicon),
    path("accounts/", include("accounts.urls")),
    path("audit/", include("audit.urls")),
    # The customer's "Was this you?" answer: public, signed links (alerts/notifications/answer_views.py).
    path("r/", include("alerts.notifications.urls")),
    # Email providers' delivery and bounce webhooks, through django-anymail (alerts/notifications/receipts.py).
    path("notifications/email/", include((tracking_urlpatterns(), "anymail"))),
    path("", include("alerts.urls")),
    # Django admin signs in through the desk's own login and MFA step.
    path("admin/login/", RedirectView.as_view(pattern_name="accounts:login", query_string=True)),
    # ... and signs out through the desk's own logout: recorded, and the session's live connections closed.
    path("admin/logout/", LogoutView.as_view()),
    path("admin/", admin.site.urls),
    path("", include("desk.urls")),
]

# 404 and 403 use Django's handlers with templates/404.html and 403.html (in the site's layout);
# the 500 page adds the request id for support.
handler500 = "config.views.server_error"
