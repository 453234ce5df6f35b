"""Django admin for BPO admins: each tenant's knowledge questions (the audited admin site records
every list, object opened, addition, change and deletion)."""

from django.contrib import admin

from desk.models import KnowledgeQuestion


@admin.register(KnowledgeQuestion)
class KnowledgeQuestionAdmin(admin.ModelAdmin):
    """The questions agents may ask a caller, per tenant: a weak factor. The answers stay with the
    client, whose webhook checks them; nothing here holds an answer."""

    list_display = ["tenant", "position", "key", "text", "is_active"]
    list_filter = ["tenant", "is_active"]
    list_select_related = ["tenant"]
    fields = ["tenant", "key", "text", "position", "is_active"]
    ordering = ["tenant__name", "position", "id"]
