from django.urls import path

from alerts import apis

app_name = "alerts"

urlpatterns = [
    path("api/v1/events/", apis.EventIngestApi.as_view(), name="events_ingest"),
]
