from django.contrib import admin, messages

from alerts.models import EventDeadLetter


@admin.register(EventDeadLetter)
class EventDeadLetterAdmin(admin.ModelAdmin):
    """Events detection set aside, for BPO admins: what failed and where (no personal data),
    and an action that runs detection over them again once the cause is fixed."""

    list_display = ["id", "event_id", "tenant", "error", "where", "attempts", "first_failed_at", "resolved_at"]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter), "error", "tenant"]
    list_select_related = ["tenant"]
    fields = ["event_id", "tenant", "error", "where", "attempts", "first_failed_at", "last_failed_at", "resolved_at"]
    readonly_fields = fields
    actions = ["reprocess"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # letters change only through the reprocess action

    def has_delete_permission(self, request, obj=None):
        return False

    def has_reprocess_permission(self, request):
        return request.user.has_perm("alerts.change_eventdeadletter")

    @admin.action(description="Run detection again over the selected events", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        from alerts.detection import dead_letters_reprocess

        resolved, failed = dead_letters_reprocess(
            letter_ids=list(queryset.values_list("pk", flat=True)), actor=request.user
        )
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(request, f"{resolved} resolved, {failed} failed again.", level)
