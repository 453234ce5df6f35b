"""Django admin, audited: every list, every object opened, every addition, change and deletion,
for every model registered on the desk's admin site (third-party ones included)."""

from django.contrib.admin.utils import quote
from django.db.models.constants import LOOKUP_SEP

from audit.decorators import _tenant_of
from audit.masking import SECRET_FIELDS, audit_diff
from audit.models import Action
from audit.services import audit_record, audit_target


class AuditedAdminMixin:
    #: model fields holding personal data: masked in the record's before/after values
    audit_personal_fields: frozenset[str] = frozenset({"email", "phone", "first_name", "last_name"})
    # A model admin may set `audit_writes_by_services` to the writes ("addition", "change",
    # "deletion") it makes through services, which record them: the mixin leaves those to them, so
    # that one change is one record. (Not a class attribute here: the site puts this mixin first.)

    def lookup_allowed(self, lookup, value, request=None):
        # Django lets a changelist filter on any field of the model from the query string, so
        # `?key__startswith=3f` or `?password__startswith=argon` would read a secret a character at a
        # time from the number of rows. No lookup through a secret field, on any model of the site.
        if any(_is_secret_field(part) for part in lookup.split(LOOKUP_SEP)):
            return False
        return super().lookup_allowed(lookup, value, request)

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl") if response.status_code == 200 else None
        if changelist is not None:
            meta = self.model._meta
            audit_record(
                action=Action.LIST,
                actor=request.user,
                target_type=f"{meta.app_label}.{meta.model_name}",
                metadata={"ids": [quote(str(obj.pk)) for obj in changelist.result_list], "path": request.path},
            )
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        original = getattr(response, "context_data", {}).get("original") if request.method == "GET" else None
        if response.status_code == 200 and original is not None:
            audit_record(action=Action.VIEW, actor=request.user, tenant=_tenant_of(original), target=original)
        return response

    def construct_change_message(self, request, form, formsets, add=False):
        request._audit_form = form
        return super().construct_change_message(request, form, formsets, add)

    def _audit_changes(self, request, obj, *, add: bool) -> dict:
        form = getattr(request, "_audit_form", None)
        if form is None:
            return {}
        model_fields = {field.name for field in obj._meta.concrete_fields}
        changed = set(form.changed_data)
        secret = {name for name in changed if any(word in name for word in SECRET_FIELDS)}
        fields = (changed & model_fields) - secret
        before = {} if add else {name: form.initial.get(name) for name in fields}
        after = {name: getattr(obj, obj._meta.get_field(name).attname) for name in fields}
        changes = audit_diff(before, after, personal=self.audit_personal_fields)
        if secret:
            changes["password" if any("password" in name for name in secret) else sorted(secret)[0]] = {"changed": True}
        return changes

    def _audit_by_services(self, write: str) -> bool:
        return write in getattr(self, "audit_writes_by_services", ())

    def history_view(self, request, object_id, extra_context=None):
        response = super().history_view(request, object_id, extra_context)
        obj = getattr(response, "context_data", {}).get("object") if response.status_code == 200 else None
        if obj is not None:
            audit_record(
                action=Action.VIEW, actor=request.user, tenant=_tenant_of(obj), target=obj, metadata={"view": "history"}
            )
        return response

    def delete_view(self, request, object_id, extra_context=None):
        response = super().delete_view(request, object_id, extra_context)
        obj = getattr(response, "context_data", {}).get("object") if request.method == "GET" else None
        if response.status_code == 200 and obj is not None:
            audit_record(
                action=Action.VIEW, actor=request.user, tenant=_tenant_of(obj), target=obj, metadata={"view": "delete"}
            )
        return response

    def log_addition(self, request, obj, message):
        if self._audit_by_services("addition"):
            return super().log_addition(request, obj, message)
        audit_record(
            action=Action.CREATE,
            actor=request.user,
            tenant=_tenant_of(obj),
            target=obj,
            changes=self._audit_changes(request, obj, add=True),
        )
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if self._audit_by_services("change") and not _is_password_form(getattr(request, "_audit_form", None)):
            return super().log_change(request, obj, message)
        audit_record(
            action=Action.UPDATE,
            actor=request.user,
            tenant=_tenant_of(obj),
            target=obj,
            changes=self._audit_changes(request, obj, add=False),
        )
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        if self._audit_by_services("deletion"):
            return super().log_deletions(request, queryset)
        for obj in queryset:
            target_type, target_id, label = audit_target(obj)
            audit_record(
                action=Action.DELETE,
                actor=request.user,
                tenant=_tenant_of(obj),
                target_type=target_type,
                target_id=target_id,
                target_label=label,
            )
        return super().log_deletions(request, queryset)


def _is_password_form(form) -> bool:
    # Django admin's password change form writes the password itself; the mixin records it.
    return form is not None and "password1" in form.fields and "username" not in form.fields


def _is_secret_field(name: str) -> bool:
    return name in SECRET_FIELDS or name.endswith(("_key", "_secret", "_token", "password"))
