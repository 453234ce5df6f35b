from django.contrib.admin import ModelAdmin
from django_otp.admin import OTPAdminSite

from audit.admin_mixins import AuditedAdminMixin


class AlertDeskAdminSite(OTPAdminSite):
    """Django admin behind the desk's MFA wall, for BPO admins only."""

    site_header = "AlertDesk administration"
    site_title = "AlertDesk admin"
    login_template = None

    def register(self, model_or_iterable, admin_class=None, **options):
        # Every model admin, ours and third-party, records its lists, views and changes.
        admin_class = admin_class or ModelAdmin
        if not issubclass(admin_class, AuditedAdminMixin):
            admin_class = type(f"Audited{admin_class.__name__}", (AuditedAdminMixin, admin_class), {})
        return super().register(model_or_iterable, admin_class, **options)

    def has_permission(self, request):
        user = request.user
        return bool(user.is_active and user.is_authenticated and user.is_bpo_admin and user.is_verified())
