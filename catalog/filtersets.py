import django_filters
from django.db.models import Q

from governance.filtersets import GovernedFilterSet

from .models import Field, Table


class TableFilterSet(GovernedFilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    tag = django_filters.CharFilter(method="by_tag", label="Tag (Category.Name)")
    owner = django_filters.CharFilter(field_name="owner__username")
    manual = django_filters.BooleanFilter(field_name="source", lookup_expr="isnull")

    class Meta:
        model = Table
        fields = [
            "source",
            "schema",
            "kind",
            "removed",
            "owner",
            "criticality",
            "legal_basis",
            "pci_scope",
            "data_domain",
        ]

    def search(self, queryset, name, value):
        return queryset.filter(Q(search_text__icontains=value) | Q(fqn__icontains=value))

    def by_tag(self, queryset, name, value):
        category, _, tag = value.partition(".")
        return queryset.filter(tags__category__name=category, tags__name=tag).distinct()


class FieldFilterSet(GovernedFilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    source = django_filters.NumberFilter(field_name="table__source")

    class Meta:
        model = Field
        fields = ["table", "data_type", "is_primary_key", "removed"]

    def search(self, queryset, name, value):
        return queryset.filter(search_text__icontains=value)  # name, description, comment
