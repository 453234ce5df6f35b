from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("mfa/", views.mfa_verify, name="mfa_verify"),
    path("mfa/enrol/", views.mfa_enrol, name="mfa_enrol"),
    path("reauth/", views.reauth, name="reauth"),
    path("security/", views.security, name="security"),
    path("security/backup-codes/", views.backup_codes_regenerate, name="backup_codes_regenerate"),
    path("tenant/", views.tenant_switch, name="tenant_switch"),
]
