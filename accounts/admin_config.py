from django.contrib.admin.apps import AdminConfig


class AlertDeskAdminConfig(AdminConfig):
    """Django admin, on the MFA-walled site (kept apart from admin_site.py, which imports models)."""

    default_site = "accounts.admin_site.AlertDeskAdminSite"
