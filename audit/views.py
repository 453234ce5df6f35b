import csv
from dataclasses import replace
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.decorators import reauth_required
from audit.decorators import audit_shown, shows_data
from audit.forms import AuditFilterForm
from audit.labels import target_display
from audit.selectors import (
    audit_can_read,
    audit_event_page_for,
    audit_event_queryset_for,
    audit_readable_tenants,
    audit_scope_for,
)

EXPORT_COLUMNS = [
    "id", "occurred_at", "tenant", "actor", "actor_role", "action", "origin", "target_type", "target_id",
    "target_label", "changes", "reason", "metadata", "request_id", "ip", "user_agent",
]  # fmt: skip


def _form(request, **fixed) -> AuditFilterForm:
    """The filter form from the query string; path parameters (a target, an actor) win."""
    scope = request.audit_scope = audit_scope_for(user=request.user)
    if not audit_can_read(user=request.user, scope=scope):
        raise Http404("No such page.")  # agents: the audit trail does not exist for them
    data = request.GET.copy()
    for key, value in fixed.items():
        data[key] = value
    return AuditFilterForm(data, tenants=audit_readable_tenants(user=request.user, scope=scope))


def _render_page(request, form, *, title, **fixed_filters):
    """`title`: a string, or a function of the page's events. `fixed_filters`: AuditFilters fields
    that the path sets (an actor's id) over the form's."""
    events, next_before = [], None
    if form.is_valid():
        events, next_before = audit_event_page_for(
            user=request.user, filters=replace(form.filters(), **fixed_filters),
            before_id=form.cleaned_data.get("before"), size=settings.AUDIT_PAGE_SIZE, scope=request.audit_scope,
        )  # fmt: skip
        audit_shown(request).objects(events, target_type="audit.auditevent")
    else:
        audit_shown(request).page("audit.auditevent", ids=[])
    query = {k: v for k, v in request.GET.items() if k != "before" and v}
    return render(
        request,
        "audit/auditevent_list.html",
        {
            "form": form,
            "events": events,
            "title": title(events) if callable(title) else title,
            "older_url": f"?{urlencode({**query, 'before': next_before})}" if next_before else None,
            "newest_url": f"?{urlencode(query)}" if form.is_valid() and form.cleaned_data.get("before") else None,
            "export_url": f"{reverse('audit:export')}?{urlencode(query)}",
        },
        status=200 if form.is_valid() else 400,
    )


@require_GET
@shows_data
def event_list(request):
    """Search the trail: by tenant, actor, action, target and dates."""
    return _render_page(request, _form(request), title="Audit trail")


@require_GET
@shows_data
def target_history(request, target_type: str, target_id: str):
    """One object's full history, named as its newest event shown names it."""
    form = _form(request, target_type=target_type, target_id=target_id)

    def title(events):
        label = events[0].target_label if events else ""
        return f"History of {target_display(target_type, target_id, label)}"

    return _render_page(request, form, title=title)


@require_GET
@shows_data
def actor_activity(request, user_id: int):
    """One staff user's activity. By id, so that paths (and the access log) hold no usernames; the
    name shown comes from the events the reader may see, so an id outside their scope and an
    unknown one read the same."""
    form = _form(request, actor="")

    def title(events):
        return f"Activity of {events[0].actor_label}" if events else f"Activity of staff user #{user_id}"

    return _render_page(request, form, title=title, actor_id=user_id)


class _Echo:
    def write(self, value):
        return value


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet must not run what a customer or an attacker typed (CSV injection).
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@require_GET
@reauth_required
@shows_data(export=True)
def export_csv(request):
    """The filtered trail as CSV, streamed. Needs a fresh re-authentication; the export is recorded."""
    form = _form(request)
    if not form.is_valid():
        return _render_page(request, form, title="Audit trail")
    filters = form.filters()
    audit_shown(request).page("audit.auditevent", filters=filters.as_metadata())
    events = audit_event_queryset_for(user=request.user, filters=filters, scope=request.audit_scope)
    events = events.select_related("tenant")
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(EXPORT_COLUMNS)
        before = None
        while True:
            page = events.filter(id__lt=before) if before else events
            batch = list(page[:2000])
            for e in batch:
                yield writer.writerow(
                    [_cell(v) for v in (
                        e.pk, e.occurred_at.isoformat(), e.tenant.slug if e.tenant else "", e.actor_label,
                        e.actor_role, e.action, e.origin, e.target_type, e.target_id, e.target_label, e.changes,
                        e.reason, e.metadata, e.request_id, e.ip, e.user_agent,
                    )]
                )  # fmt: skip
            if len(batch) < 2000:
                return
            before = batch[-1].pk

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response
