import django_filters
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from catalog.models import Table
from governance.filtersets import GovernedFilterSet
from sources.models import DataSource

from .models import LineageEdge


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.ModelChoiceFilter):
    """An object chosen by id, filtered by a method."""


class LineageEdgeFilterSet(GovernedFilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    table = IdFilter(queryset=Table.objects.all(), method="by_table", label="Table (either end)")
    source = IdFilter(
        queryset=DataSource.objects.all(), method="by_source", label="Source (either end)"
    )

    class Meta:
        model = LineageEdge
        fields = ["status", "origin", "upstream", "downstream"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(upstream__fqn__icontains=value) | Q(downstream__fqn__icontains=value)
        )

    def by_table(self, queryset, name, value):
        return queryset.filter(Q(upstream=value) | Q(downstream=value))

    def by_source(self, queryset, name, value):
        return queryset.filter(Q(upstream__source=value) | Q(downstream__source=value))
