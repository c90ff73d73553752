import django_filters
from django.db.models import Q

from governance.filtersets import GovernedFilterSet

from .models import ConnectionTest, DataSource


class DataSourceFilterSet(GovernedFilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    owner = django_filters.CharFilter(field_name="owner__username")

    class Meta:
        model = DataSource
        fields = ["kind", "environment", "owner", "is_active", "last_test_ok"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value)
            | Q(host__icontains=value)
            | Q(database__icontains=value)
            | Q(description__icontains=value)
        )


class ConnectionTestFilterSet(GovernedFilterSet):
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = ConnectionTest
        fields = ["source", "ok", "error_kind", "operation"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(source__name__icontains=value) | Q(error__icontains=value))
