"""Catalog search: table and field names, descriptions, comments and tags, ranked, and
filtered by object permissions like every other list. PostgreSQL ranks with full-text
search plus trigram similarity (typos); other databases fall back to substring matching."""

import operator
from functools import reduce

from django.db import connection
from django.db.models import (
    Case,
    Count,
    F,
    FloatField,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Upper

from .models import Field, Table, Tag


def field_count():
    """A table's fields that still exist, as an annotation. A correlated subquery is counted
    for the rows a page shows only; Count() over a join would group every table the list
    matches, for the page and again for its total (measured in bench/api_latency.py)."""
    fields = Field.objects.filter(table=OuterRef("pk"), removed=False).order_by()
    return Coalesce(Subquery(fields.values("table").annotate(n=Count("pk")).values("n")), 0)


def tables_for_reading(queryset):
    """The tables the read endpoints serialize: the owner's name, the source's last scan and
    the field count come with each row, and the tags as a list, instead of whole related
    objects and a queryset per table (bench/api_latency.py measures the difference)."""
    return (
        queryset.select_related(None)
        .annotate(
            owner_username=F("owner__username"),
            source_last_scan_at=F("source__last_scan_at"),
            field_count=field_count(),
        )
        .prefetch_related(None)
        .prefetch_related(
            Prefetch("tags", queryset=Tag.objects.select_related("category"), to_attr="tag_list")
        )
    )


def _matches(queryset, q, typos=False):
    """Rows whose name, description or comment contains q, or that carry a tag named q; with
    `typos` (PostgreSQL), rows whose name is within a typo of q instead. On PostgreSQL each
    condition is its own indexed query (trigram indexes on UPPER(column), as icontains
    compares) and their union picks the candidates; one OR over all conditions would read
    every row instead."""
    model = queryset.model
    if typos:
        rows = model._base_manager.annotate(upper_name=Upper("name")).order_by()
        return queryset.filter(pk__in=rows.filter(upper_name__trigram_similar=q).values("pk"))
    column = "table_id" if model is Table else "field_id"
    tagged = model.tags.through.objects.filter(tag__name__icontains=q).values(column)
    conditions = [
        Q(name__icontains=q),
        Q(description__icontains=q),
        Q(comment__icontains=q),
        Q(pk__in=tagged),
    ]
    if connection.vendor != "postgresql":
        return queryset.filter(reduce(operator.or_, conditions))
    rows = model._base_manager.order_by()
    parts = [rows.filter(c).values("pk") for c in conditions]
    return queryset.filter(pk__in=parts[0].union(*parts[1:]))


def _ranked(queryset, q, typos=False):
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import (
            SearchQuery,
            SearchRank,
            SearchVector,
            TrigramSimilarity,
        )

        vector = (
            SearchVector("name", weight="A", config="simple")
            + SearchVector("description", weight="B", config="simple")
            + SearchVector("comment", weight="C", config="simple")
        )
        query = SearchQuery(q, search_type="websearch", config="simple")
        return _matches(queryset, q, typos).annotate(
            score=SearchRank(vector, query)
            + TrigramSimilarity("name", q)
            + Case(
                When(name__iexact=q, then=Value(1.0)), default=Value(0.0), output_field=FloatField()
            )
        )
    return _matches(queryset, q).annotate(
        score=Case(
            When(name__iexact=q, then=Value(3.0)),
            When(name__istartswith=q, then=Value(2.0)),
            When(name__icontains=q, then=Value(1.5)),
            default=Value(1.0),
            output_field=FloatField(),
        )
    )


def search(user, q, *, source=None, kind=None, tag=None, classification=None, limit=50):
    tables = Table.objects.restrict(user, "view").filter(removed=False)
    fields = Field.objects.restrict(user, "view").filter(removed=False, table__removed=False)
    if source:
        tables, fields = tables.filter(source=source), fields.filter(table__source=source)
    if kind:
        tables, fields = tables.filter(kind=kind), fields.filter(table__kind=kind)
    if tag:
        category, _, name = tag.partition(".")
        tables = tables.filter(tags__category__name=category, tags__name=name)
        fields = fields.filter(tags__category__name=category, tags__name=name)
    if classification:
        category, _, name = classification.partition(".")
        tables = tables.none()
        fields = fields.filter(
            classifications__tag__category__name=category,
            classifications__tag__name=name,
        ).exclude(classifications__status="rejected")
    results = _found(tables, fields, q, limit)
    if len(results) < limit and connection.vendor == "postgresql":
        # Names within a typo of q fill an answer that exact matches leave short; computing
        # similarity for every row costs more than all the exact matches together, and a
        # typo match ranks below a name that contains q anyway.
        seen = {(r["type"], r["id"]) for r in results}
        typos = _found(tables, fields, q, limit, typos=True)
        results += [r for r in typos if (r["type"], r["id"]) not in seen]
    results.sort(key=lambda r: (-r["score"], r["fqn"]))
    return results[:limit]


def _found(tables, fields, q, limit, typos=False):
    """The best `limit` tables and the best `limit` fields for q, as search results."""
    tables, fields = _ranked(tables, q, typos), _ranked(fields, q, typos)
    table_rows = tables.values("id", "name", "fqn", "description", "score").distinct()
    field_rows = fields.values(
        "id", "name", "table_id", "table__fqn", "description", "score"
    ).distinct()
    return [
        {
            "type": "table",
            "id": r["id"],
            "name": r["name"],
            "fqn": r["fqn"],
            "table_id": r["id"],
            "description": r["description"],
            "score": round(r["score"], 4),
        }
        for r in table_rows.order_by("-score", "fqn")[:limit]
    ] + [
        {
            "type": "field",
            "id": r["id"],
            "name": r["name"],
            "fqn": f"{r['table__fqn']}.{r['name']}",
            "table_id": r["table_id"],
            "description": r["description"],
            "score": round(r["score"], 4),
        }
        for r in field_rows.order_by("-score", "table__fqn", "name")[:limit]
    ]
