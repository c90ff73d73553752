import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.rest_framework import DjangoFilterBackend

from .models import JobRun


class TrueOrFalseField(forms.Field):
    """A boolean query parameter: true or false, anything else is an error (django-filter's
    own would ignore it and answer the unfiltered list)."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value.lower() not in ("true", "false"):
            raise ValidationError("expected true or false")
        return value.lower() == "true"


class GovernedFilterSet(django_filters.FilterSet):
    """Choices of related objects (?source=7) come from what the user may see, so that a
    hidden object answers exactly like a missing one; booleans are true or false, and
    numbers whole."""

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        user = getattr(request, "user", None)
        for item in self.filters.values():
            queryset = getattr(item, "queryset", None)
            if hasattr(queryset, "restrict"):
                item.queryset = queryset.restrict(user, "view")
            if isinstance(item, django_filters.BooleanFilter):
                item.field_class = TrueOrFalseField
                item.extra.pop("widget", None)
            if type(item) is django_filters.NumberFilter:  # every one filters by an id
                item.field_class = forms.IntegerField


class GovernedFilterBackend(DjangoFilterBackend):
    filterset_base = GovernedFilterSet


class JobRunFilterSet(GovernedFilterSet):
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = JobRun
        fields = ["status", "name", "target_type", "target_id"]

    def search(self, queryset, name, value):
        return queryset.filter(name__icontains=value) | queryset.filter(
            target_repr__icontains=value
        )
