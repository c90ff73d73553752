import django_filters
from django_filters.rest_framework import DjangoFilterBackend

from .models import JobRun


class GovernedFilterSet(django_filters.FilterSet):
    """Choices of related objects (?source=7) come from what the user may see, so that a
    hidden object answers exactly like a missing one."""

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        user = getattr(request, "user", None)
        for item in self.filters.values():
            queryset = getattr(item, "queryset", None)
            if hasattr(queryset, "restrict"):
                item.queryset = queryset.restrict(user, "view")


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
