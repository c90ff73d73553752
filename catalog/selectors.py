"""Catalog search: table and field names, descriptions, comments and tags, ranked, and
filtered by object permissions like every other list. PostgreSQL ranks with full-text
search plus trigram similarity (typos); other databases fall back to substring matching."""

import operator
from functools import reduce

from django.db import connection
from django.db.models import Case, FloatField, Q, Value, When
from django.db.models.functions import Upper

from .models import Field, Table


def _matches(queryset, q):
    """Rows whose name, description or comment contains q, or that carry a tag named q.
    On PostgreSQL each condition is its own indexed query (trigram indexes on UPPER(column),
    as icontains compares) and their union picks the candidates; names within a typo of q
    match too. One OR over all conditions would read every row instead."""
    model = queryset.model
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
    conditions.append(Q(upper_name__trigram_similar=q))
    rows = model._base_manager.annotate(upper_name=Upper("name")).order_by()
    parts = [rows.filter(c).values("pk") for c in conditions]
    return queryset.filter(pk__in=parts[0].union(*parts[1:]))


def _ranked(queryset, q):
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
        return _matches(queryset, q).annotate(
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
    tables, fields = _ranked(tables, q), _ranked(fields, q)
    table_rows = tables.values("id", "name", "fqn", "description", "score").distinct()
    field_rows = fields.values(
        "id", "name", "table_id", "table__fqn", "description", "score"
    ).distinct()
    results = [
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
    results.sort(key=lambda r: (-r["score"], r["fqn"]))
    return results[:limit]
