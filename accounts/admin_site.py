from django_otp.admin import OTPAdminSite


class AlertDeskAdminSite(OTPAdminSite):
    """Django admin behind the desk's MFA wall, for BPO admins only."""

    site_header = "AlertDesk administration"
    site_title = "AlertDesk admin"
    login_template = None

    def has_permission(self, request):
        user = request.user
        return bool(user.is_active and user.is_authenticated and user.is_bpo_admin and user.is_verified())
