from django.urls import path

from desk import apis, views

app_name = "desk"

urlpatterns = [
    path("", views.home, name="home"),
    path("api/v1/queues/", apis.QueueListApi.as_view(), name="queue_list"),
    path("api/v1/queues/<int:queue_id>/alerts/", apis.QueueAlertListApi.as_view(), name="queue_alerts"),
]
