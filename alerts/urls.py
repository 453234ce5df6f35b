from django.contrib.auth.decorators import login_not_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.decorators import mfa_not_required
from alerts import apis
from alerts.notifications import apis as notification_apis
from alerts.notifications import views as notification_views

app_name = "alerts"


def _public(view):
    # Client companies integrate from the schema and the docs alone: no staff login.
    return login_not_required(mfa_not_required(view))


urlpatterns = [
    path("api/v1/events/", apis.EventIngestApi.as_view(), name="events_ingest"),
    path("api/v1/alerts/", apis.AlertListApi.as_view(), name="alert_list"),
    path("api/v1/alerts/<int:alert_id>/", apis.AlertDetailApi.as_view(), name="alert_detail"),
    path("api/v1/alerts/<int:alert_id>/acknowledge/", apis.AlertAcknowledgeApi.as_view(), name="alert_acknowledge"),
    path("api/v1/alerts/<int:alert_id>/resolve/", apis.AlertResolveApi.as_view(), name="alert_resolve"),
    path("api/v1/alerts/<int:alert_id>/dismiss/", apis.AlertDismissApi.as_view(), name="alert_dismiss"),
    path("api/v1/alerts/<int:alert_id>/claim/", apis.AlertClaimApi.as_view(), name="alert_claim"),
    path("api/v1/alerts/<int:alert_id>/release/", apis.AlertReleaseApi.as_view(), name="alert_release"),
    path("api/v1/alerts/<int:alert_id>/assign/", apis.AlertAssignApi.as_view(), name="alert_assign"),
    path(
        "api/v1/alerts/<int:alert_id>/notifications/",
        notification_apis.AlertNotificationListApi.as_view(),
        name="alert_notifications",
    ),
    path("outbox/", notification_views.outbox_page, name="outbox"),
    path("drills/", notification_views.drill_list, name="drill_list"),
    path("drills/run/", notification_views.drill_run, name="drill_run"),
    path(
        "notifications/twilio/status/<int:notification_id>/",
        notification_views.twilio_status,
        name="notification_twilio_status",
    ),
    path("notifications/push/receipt/", notification_views.push_receipt, name="push_receipt"),
    path("api/schema/", _public(SpectacularAPIView.as_view()), name="schema"),
    path("api/docs/", _public(SpectacularSwaggerSplitView.as_view(url_name="alerts:schema")), name="docs"),
]
