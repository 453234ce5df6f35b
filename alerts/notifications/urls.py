"""The customer's answer (public): included at /r/ in config/urls.py, so that the links in messages
stay short."""

from django.urls import path

from alerts.notifications import answer_views

app_name = "answers"

urlpatterns = [
    # Before the token's route: a token always holds ":" (signed), so it can never be "sms".
    path("sms/twilio/", answer_views.answer_sms_twilio, name="sms_twilio"),
    path("<str:token>/", answer_views.answer_page, name="page"),
]
