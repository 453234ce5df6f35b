from django.urls import path

from desk import apis, views

app_name = "desk"

urlpatterns = [
    path("", views.home, name="home"),
    path("api/v1/queues/", apis.QueueListApi.as_view(), name="queue_list"),
    path("api/v1/queues/<int:queue_id>/alerts/", apis.QueueAlertListApi.as_view(), name="queue_alerts"),
    path("api/v1/queues/<int:queue_id>/next/", apis.QueueNextApi.as_view(), name="queue_next_api"),
    path("api/v1/cases/", apis.CaseListApi.as_view(), name="case_list_api"),
    path("api/v1/cases/<int:case_id>/", apis.CaseDetailApi.as_view(), name="case_detail_api"),
    path("api/v1/cases/<int:case_id>/notes/", apis.CaseNoteApi.as_view(), name="case_notes_api"),
    path("api/v1/cases/<int:case_id>/status/", apis.CaseStatusApi.as_view(), name="case_status_api"),
    path("api/v1/cases/<int:case_id>/claim/", apis.CaseClaimApi.as_view(), name="case_claim_api"),
    path("api/v1/cases/<int:case_id>/reveal/", apis.CaseRevealApi.as_view(), name="case_reveal_api"),
    path("api/v1/cases/<int:case_id>/concerns/", apis.CaseConcernApi.as_view(), name="case_concerns_api"),
    path("api/v1/cases/<int:case_id>/playbook/checks/", apis.CaseCheckApi.as_view(), name="case_checks_api"),
    path("api/v1/cases/<int:case_id>/share/", apis.CaseShareApi.as_view(), name="case_share_api"),
    path("api/v1/cases/<int:case_id>/unshare/", apis.CaseUnshareApi.as_view(), name="case_unshare_api"),
    path("api/v1/alerts/<int:alert_id>/case/", apis.AlertCaseApi.as_view(), name="alert_case_api"),
    path("queues/<int:queue_id>/", views.queue_page, name="queue"),
    path("queues/<int:queue_id>/rows/", views.queue_rows, name="queue_rows"),
    path("queues/<int:queue_id>/next/", views.queue_next, name="queue_next"),
    path("queues/<int:queue_id>/alerts/<int:alert_id>/claim/", views.queue_claim, name="queue_claim"),
    path("alerts/<int:alert_id>/", views.alert_detail, name="alert_detail"),
    path("alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge_view, name="alert_acknowledge"),
    path("alerts/<int:alert_id>/resolve/", views.alert_resolve_view, name="alert_resolve"),
    path("alerts/<int:alert_id>/dismiss/", views.alert_dismiss_view, name="alert_dismiss"),
]
