"""The staff alert list's filters (django-filter), applied inside the access function's scope."""

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from accounts.models import User
from alerts.models import Alert, AlertStatus, AlertType
from alerts.selectors import alert_list_for


class _IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class _SlugFilter(django_filters.CharFilter):
    field_class = forms.SlugField


class AlertFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)
    type = django_filters.ChoiceFilter(choices=AlertType.choices)
    tenant = _SlugFilter(field_name="tenant__slug", max_length=50)
    min_severity = _IntegerFilter(field_name="severity", lookup_expr="gte", min_value=1, max_value=4)

    class Meta:
        model = Alert
        fields: list[str] = []


def alert_list_filtered(*, user: User, params) -> QuerySet[Alert]:
    """The alerts `user` may see (alert_list_for), narrowed by the list's query parameters.
    Raises ValidationError (field -> messages) on a value a filter cannot take."""
    filters = AlertFilter(data=params, queryset=alert_list_for(user=user))
    if not filters.is_valid():
        raise ValidationError(filters.errors)
    return filters.qs
