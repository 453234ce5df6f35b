"""One line for a view to declare that its response shows data, and have the view recorded.

    @shows_data
    def case_detail(request, case_id):
        case = case_get_for(user=request.user, case_id=case_id)
        audit_shown(request).object(case)
        ...

A list view declares the objects on the page (`.objects(page)`) and the record keeps their ids.
Class-based and DRF views take it as `@method_decorator(shows_data, name="dispatch")`. A view that
is marked but declares nothing fails loudly: every data view must say what it showed (OPTIONS and
HEAD answers show nothing, so they declare and record nothing).
"""

import functools
from collections import defaultdict

from django.core.exceptions import ImproperlyConfigured

from audit.models import Action
from audit.services import audit_record_many, audit_target

# Answers that show no data: OPTIONS describes the endpoint (DRF's metadata), and the body of a
# HEAD is dropped by the server. Nothing to declare, nothing recorded; GET stays strict.
BODILESS_METHODS = frozenset({"OPTIONS", "HEAD"})


def _tenant_of(obj):
    from accounts.models import Tenant

    if isinstance(obj, Tenant):
        return obj
    return getattr(obj, "tenant", None) if hasattr(obj, "tenant_id") else None


class AuditShown:
    """What one response showed, collected while the view runs and recorded once it answered."""

    def __init__(self, *, export: bool = False):
        self.export = export
        self._objects: list = []
        self._lists: list[tuple[str, list, object]] = []
        self._pages: list[tuple[str, object, dict]] = []

    def object(self, obj) -> None:
        self._objects.append(obj)

    def objects(self, objs, *, target_type: str | None = None) -> None:
        objs = list(objs)
        if target_type is None and objs:
            target_type = audit_target(objs[0])[0]
        self._lists.append((target_type or "", objs, None))

    def page(self, name: str, *, tenant=None, ids=(), **metadata) -> None:
        """A screen that shows data that is not one model's rows (an audit search, a dashboard)."""
        self._pages.append((name, tenant, {"ids": [str(i) for i in ids], **metadata}))

    @property
    def empty(self) -> bool:
        return not (self._objects or self._lists or self._pages)

    def record(self, request) -> None:
        actor = request.user
        current_pk = getattr(getattr(request, "tenant", None), "pk", None)  # a lazy object, maybe of None

        bpo_admin = bool(getattr(actor, "is_bpo_admin", False))

        def role(tenant):
            if bpo_admin:
                return None  # audit_record names it, the same way for every event of the request
            # The request already knows the user's role in the tenant they work in: no query.
            if tenant is not None and current_pk is not None and tenant.pk == current_pk:
                return str(request.tenant_role or "")
            return None

        # Every event of the response in one statement (audit_record_many), in the order declared.
        records = []
        for obj in self._objects:
            tenant = _tenant_of(obj)
            records.append(
                {"action": Action.VIEW, "actor": actor, "tenant": tenant, "target": obj, "actor_role": role(tenant)}
            )
        for target_type, objs, _ in self._lists:
            by_tenant = defaultdict(list)
            for obj in objs:
                tenant = _tenant_of(obj)
                by_tenant[tenant.pk if tenant else None].append((tenant, str(obj.pk)))
            if not by_tenant:
                by_tenant[None] = []
            records += [
                {
                    "action": Action.EXPORT if self.export else Action.LIST,
                    "actor": actor,
                    "tenant": rows[0][0] if rows else None,
                    "actor_role": role(rows[0][0] if rows else None),
                    "target_type": target_type,
                    "metadata": {"ids": [pk for _, pk in rows], "path": request.path},
                }
                for rows in by_tenant.values()
            ]
        for name, tenant, metadata in self._pages:
            records.append(
                {
                    "action": Action.EXPORT if self.export else Action.LIST if metadata["ids"] else Action.VIEW,
                    "actor": actor,
                    "tenant": tenant,
                    "actor_role": role(tenant),
                    "target_type": name,
                    "metadata": {**metadata, "path": request.path},
                }
            )
        if records:
            audit_record_many(records)


def audit_shown(request) -> AuditShown:
    request = getattr(request, "_request", request)  # DRF wraps the Django request
    shown = getattr(request, "audit_shown", None)
    if shown is None:
        raise ImproperlyConfigured("audit_shown() is for views decorated with @shows_data")
    return shown


def shows_data(view=None, *, export: bool = False):
    """Mark a view as showing customer, alert, case or audit data, and record what it showed.
    `@shows_data(export=True)` records the response as an export instead."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            shown = request.audit_shown = AuditShown(export=export)
            response = view(request, *args, **kwargs)
            if request.method in BODILESS_METHODS:
                return response
            if 200 <= response.status_code < 300:
                if shown.empty:
                    raise ImproperlyConfigured(f"{view.__qualname__} is marked @shows_data but declared nothing shown")
                shown.record(request)
            return response

        wrapper.audit_shows_data = True
        return wrapper

    return decorate(view) if view is not None else decorate
