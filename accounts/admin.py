from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts import services
from accounts.models import Membership, Tenant, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["tenant", "role", "created_at"]
    readonly_fields = ["tenant", "role", "created_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # memberships change through the Membership admin, which calls the services


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
    readonly_fields = ["last_login", "date_joined"]
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        # Access changes go through the services (which the audit trail will hook into).
        was = User.objects.get(pk=obj.pk)
        super().save_model(request, obj, form, change)
        if "is_active" in form.changed_data:
            (services.user_activate if obj.is_active else services.user_deactivate)(user=obj, actor=request.user)
        if "is_bpo_admin" in form.changed_data or was.is_staff != obj.is_bpo_admin:
            services.user_set_bpo_admin(user=obj, is_bpo_admin=obj.is_bpo_admin, actor=request.user)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "updated_at"]
    list_filter = ["role", "tenant"]
    list_select_related = ["user", "tenant"]
    autocomplete_fields = ["user", "tenant"]

    def save_model(self, request, obj, form, change):
        services.membership_set(user=obj.user, tenant=obj.tenant, role=obj.role, actor=request.user)

    def delete_model(self, request, obj):
        services.membership_remove(user=obj.user, tenant=obj.tenant, actor=request.user)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("user", "tenant"):
            services.membership_remove(user=membership.user, tenant=membership.tenant, actor=request.user)

    def get_readonly_fields(self, request, obj=None):
        return ["user", "tenant"] if obj else []
