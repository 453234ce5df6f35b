from django.urls import path

from desk import apis, message_views, views

app_name = "desk"

urlpatterns = [
    path("", views.home, name="home"),
    path("api/v1/queues/", apis.QueueListApi.as_view(), name="queue_list"),
    path("api/v1/queues/<int:queue_id>/alerts/", apis.QueueAlertListApi.as_view(), name="queue_alerts"),
    path("api/v1/queues/<int:queue_id>/next/", apis.QueueNextApi.as_view(), name="queue_next_api"),
    path("queues/<int:queue_id>/", views.queue_page, name="queue"),
    path("queues/<int:queue_id>/rows/", views.queue_rows, name="queue_rows"),
    path("queues/<int:queue_id>/next/", views.queue_next, name="queue_next"),
    path("queues/<int:queue_id>/alerts/<int:alert_id>/claim/", views.queue_claim, name="queue_claim"),
    path("alerts/<int:alert_id>/", views.alert_detail, name="alert_detail"),
    path("alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge_view, name="alert_acknowledge"),
    path("alerts/<int:alert_id>/resolve/", views.alert_resolve_view, name="alert_resolve"),
    path("alerts/<int:alert_id>/dismiss/", views.alert_dismiss_view, name="alert_dismiss"),
    # Customer messages: tenant admins and BPO admins (desk/message_views.py).
    path("messages/", message_views.messages_home, name="messages"),
    path("messages/<int:tenant_id>/", message_views.message_list, name="message_list"),
    path("messages/<int:tenant_id>/settings/", message_views.message_settings_update, name="message_settings"),
    path("messages/<int:tenant_id>/preview/", message_views.message_preview, name="message_preview"),
    path(
        "messages/<int:tenant_id>/<str:alert_type>/<str:channel>/<str:locale>/",
        message_views.message_edit,
        name="message_edit",
    ),
    path(
        "messages/<int:tenant_id>/<str:alert_type>/<str:channel>/<str:locale>/reset/",
        message_views.message_reset,
        name="message_reset",
    ),
]
