"""Django admin for BPO admins: every write goes through the services, which record it (one audit
record per change); the audited mixin records the lists and objects opened."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404
from django.urls import path
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import Membership, Tenant, User
from config import push

USER_PROFILE_FIELDS = ("username", "first_name", "last_name", "email")
TENANT_SETTINGS_FIELDS = ("name", "audit_retention_days")


def _adopt(obj, saved, *fields: str) -> None:
    """Django admin goes on with the object its form built (for its messages, log entry and
    redirect): make it the row the service saved."""
    obj.pk = saved.pk
    for name in fields:
        setattr(obj, name, getattr(saved, name))
    obj._state.adding, obj._state.db = False, saved._state.db


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["tenant", "role", "created_at"]
    readonly_fields = ["tenant", "role", "created_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # memberships change through the Membership admin, which calls the services


class StaffCreationForm(UserCreationForm):
    """A staff user: username, email and a password the validators accept (no unusable password)."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "email", "is_active", "is_bpo_admin", "last_login"]
    list_filter = ["is_active", "is_bpo_admin"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Contact", {"fields": ["first_name", "last_name", "email"]}),
        ("Access", {"fields": ["is_active", "is_bpo_admin"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_form = StaffCreationForm
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["username", "email", "password1", "password2"]})]
    readonly_fields = ["last_login", "date_joined"]
    inlines = [MembershipInline]
    audit_writes_by_services = frozenset({"addition", "change"})

    def get_inline_instances(self, request, obj=None):
        return super().get_inline_instances(request, obj) if obj else []  # a new user has no memberships yet

    def user_change_password(self, request, id, form_url=""):
        # Django's own view sets the password (its form runs the validators; the audited mixin
        # records it once). The user's other sessions are signed out by the new hash: their open
        # desk connections re-check now, not at their next periodic check.
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            push.user_access_changed(int(id))
        return response

    def save_model(self, request, obj, form, change):
        if not change:
            created = services.user_create(
                username=form.cleaned_data["username"],
                email=form.cleaned_data.get("email", ""),
                password=form.cleaned_data["password1"],
                actor=request.user,
            )
            _adopt(obj, created, "password")
            return
        # The form has already written its values onto `obj`: the services read the stored row.
        stored = User.objects.get(pk=obj.pk)
        changed = set(form.changed_data)
        profile = {name: form.cleaned_data[name] for name in USER_PROFILE_FIELDS if name in changed}
        if profile:
            stored = services.user_update(user=stored, data=profile, actor=request.user)
        if "is_active" in changed:
            (services.user_activate if obj.is_active else services.user_deactivate)(user=stored, actor=request.user)
        if "is_bpo_admin" in changed:
            services.user_set_bpo_admin(user=stored, is_bpo_admin=obj.is_bpo_admin, actor=request.user)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    audit_writes_by_services = frozenset({"addition", "change"})

    def get_readonly_fields(self, request, obj=None):
        return ["slug"] if obj else []  # other records and URLs name tenants by slug

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj else self.prepopulated_fields

    def save_model(self, request, obj, form, change):
        if not change:
            created = services.tenant_create(
                slug=obj.slug,
                name=obj.name,
                is_active=obj.is_active,
                audit_retention_days=obj.audit_retention_days,
                actor=request.user,
            )
            _adopt(obj, created, "created_at")
            return
        stored = Tenant.objects.get(pk=obj.pk)
        changed = set(form.changed_data)
        data = {name: form.cleaned_data[name] for name in TENANT_SETTINGS_FIELDS if name in changed}
        if data:
            stored = services.tenant_update(tenant=stored, data=data, actor=request.user)
        if "is_active" in changed:
            services.tenant_set_active(tenant=stored, is_active=obj.is_active, actor=request.user)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "updated_at"]
    list_filter = ["role", "tenant"]
    list_select_related = ["user", "tenant"]
    autocomplete_fields = ["user", "tenant"]
    audit_writes_by_services = frozenset({"addition", "change", "deletion"})

    def save_model(self, request, obj, form, change):
        membership = services.membership_set(user=obj.user, tenant=obj.tenant, role=obj.role, actor=request.user)
        _adopt(obj, membership, "created_at", "updated_at")

    def delete_model(self, request, obj):
        services.membership_remove(user=obj.user, tenant=obj.tenant, actor=request.user)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("user", "tenant"):
            services.membership_remove(user=membership.user, tenant=membership.tenant, actor=request.user)

    def get_readonly_fields(self, request, obj=None):
        return ["user", "tenant"] if obj else []


class StaffTOTPDeviceAdmin(TOTPDeviceAdmin):
    """Staff authenticators: a BPO admin sees that one exists and removes a lost one (its owner
    then enrols again). Its secret is never shown here: django-otp's config and QR code views are
    gone (their URLs answer 404), and the key is left out of the form and the list."""

    def get_urls(self):
        # django-otp's own URLs for these views would otherwise fall through to the change view's
        # catch-all (a redirect): they answer 404, as for a device that does not exist.
        gone = [
            path("<int:pk>/config/", self.admin_site.admin_view(self.secret_view_gone)),
            path("<int:pk>/qrcode/", self.admin_site.admin_view(self.secret_view_gone)),
        ]
        return gone + admin.ModelAdmin.get_urls(self)

    def secret_view_gone(self, request, pk):
        raise Http404("No such page.")

    audit_writes_by_services = frozenset({"deletion"})

    def delete_model(self, request, obj):
        services.mfa_device_remove(device=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for device in queryset:
            services.mfa_device_remove(device=device, actor=request.user)

    def get_list_display(self, request):
        return [name for name in super().get_list_display(request) if name != "qrcode_link"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = []
        for name, options in super().get_fieldsets(request, obj):
            fields = [field for field in options["fields"] if field not in ("key", "qrcode_link")]
            if fields:
                fieldsets.append((name, {**options, "fields": fields}))
        return fieldsets


admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, StaffTOTPDeviceAdmin)
