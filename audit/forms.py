from datetime import UTC, datetime, time, timedelta

from django import forms

from audit.models import Action
from audit.selectors import AuditFilters, audit_actor_get

DATE = {"type": "date"}
NO_ACTOR = -1  # matches no event (ids start at 1), and still shows in an export's recorded filters


class AuditFilterForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=None, required=False, empty_label="All my tenants")
    actor = forms.CharField(label="Staff username", required=False, max_length=150)
    action = forms.ChoiceField(choices=[("", "Any action"), *Action.choices], required=False)
    target_type = forms.CharField(label="Target type", required=False, max_length=64, help_text="e.g. accounts.user")
    target_id = forms.CharField(label="Target id", required=False, max_length=64)
    date_from = forms.DateField(label="From (UTC)", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(
        label="To (UTC, inclusive)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, tenants, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = tenants

    def clean(self):
        data = super().clean()
        if data.get("target_id") and not data.get("target_type"):
            self.add_error("target_type", "Give the target type with a target id.")
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        if data.get("actor"):
            # No "no such user" answer: an unknown name and one outside the reader's tenants both
            # simply match no events, so the filter tells nobody which usernames exist.
            actor = audit_actor_get(username=data["actor"])
            data["actor_id"] = actor.pk if actor is not None else NO_ACTOR
        return data

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        start = data.get("date_from")
        end = data.get("date_to")
        return AuditFilters(
            tenant_id=data["tenant"].pk if data.get("tenant") else None,
            actor_id=data.get("actor_id"),
            action=data.get("action") or "",
            target_type=data.get("target_type") or "",
            target_id=data.get("target_id") or "",
            date_from=datetime.combine(start, time.min, tzinfo=UTC) if start else None,
            date_to=datetime.combine(end, time.min, tzinfo=UTC) + timedelta(days=1) if end else None,
        )
