from django.contrib import admin

from audit.models import AuditCheckpoint, AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """The trail is read-only everywhere: no add, change or delete, whatever the permissions."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "occurred_at", "tenant", "actor_label", "actor_role", "action", "target_type", "target_id"]
    list_filter = ["action", "origin", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["=target_id", "=actor_label", "=request_id"]
    show_full_result_count = False


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["chain", "seq", "created_at", "hash"]
