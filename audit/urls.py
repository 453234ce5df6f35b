from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.event_list, name="event_list"),
    path("export.csv", views.export_csv, name="export"),
    path("target/<str:target_type>/<str:target_id>/", views.target_history, name="target_history"),
    path("actor/<int:user_id>/", views.actor_activity, name="actor_activity"),
]
