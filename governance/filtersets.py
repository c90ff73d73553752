import django_filters

from .models import JobRun


class JobRunFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = JobRun
        fields = ["status", "name", "target_type", "target_id"]

    def search(self, queryset, name, value):
        return queryset.filter(name__icontains=value) | queryset.filter(
            target_repr__icontains=value
        )
