"""Catalog search: table and field names, descriptions, comments and tags, ranked, and
filtered by object permissions like every other list. PostgreSQL ranks with full-text
search plus trigram similarity (typos); other databases fall back to substring matching."""

from django.db import connection
from django.db.models import Case, F, FloatField, Q, Value, When

from .models import Field, Table


def _ranked_postgresql(queryset, q, weights):
    from django.contrib.postgres.search import (
        SearchQuery,
        SearchRank,
        SearchVector,
        TrigramSimilarity,
    )

    vector = None
    for field, weight in weights:
        part = SearchVector(field, weight=weight, config="simple")
        vector = part if vector is None else vector + part
    query = SearchQuery(q, search_type="websearch", config="simple")
    return (
        queryset.annotate(rank=SearchRank(vector, query), similarity=TrigramSimilarity("name", q))
        .filter(Q(rank__gt=0) | Q(similarity__gt=0.3) | Q(tags__name__iexact=q))
        .annotate(score=F("rank") + F("similarity"))
    )


def _ranked_simple(queryset, q, fields):
    matches = Q(tags__name__icontains=q)
    for field in fields:
        matches |= Q(**{f"{field}__icontains": q})
    return queryset.filter(matches).annotate(
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
    if connection.vendor == "postgresql":
        tables = _ranked_postgresql(
            tables, q, [("name", "A"), ("description", "B"), ("comment", "C")]
        )
        fields = _ranked_postgresql(
            fields, q, [("name", "A"), ("description", "B"), ("comment", "C")]
        )
    else:
        tables = _ranked_simple(tables, q, ["name", "description", "comment"])
        fields = _ranked_simple(fields, q, ["name", "description", "comment"])
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
