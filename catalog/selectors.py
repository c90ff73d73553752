"""Catalog search: table and field names, descriptions, comments and tags, ranked, and
filtered by object permissions like every other list. PostgreSQL ranks with full-text
search plus trigram similarity (typos); other databases fall back to substring matching."""

from django.db import connection
from django.db.models import (
    Case,
    Count,
    F,
    FloatField,
    OuterRef,
    Prefetch,
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


def _matching(queryset, q, tag_ids, typos=False):
    """The querysets of rows that match q, each served by one index on PostgreSQL (their
    answers are merged, not OR-ed: an OR of an indexed condition and a join reads every
    row): rows whose name, description or comment contains q (search_text), and rows
    carrying one of the tags `tag_ids` (those whose name contains q); with `typos`, rows
    whose name is within a typo of q instead (PostgreSQL)."""
    if typos:
        names = queryset.annotate(upper_name=Upper("name"))
        return [names.filter(upper_name__trigram_similar=q)]
    text = queryset.filter(search_text__icontains=q)
    return [text, queryset.filter(tags__in=tag_ids)] if tag_ids else [text]


def _score(q):
    """A name equal to q first, then names that start with it, contain it, then rows whose
    description or only comment or tag matches; on PostgreSQL names nearer to q in
    trigrams rank higher within each band (and the typo matches, which contain nothing,
    by how near they are). Plain comparisons of the rows already found: a full-text rank
    parsed every row's three columns and cost more than finding them."""
    score = Case(
        When(name__iexact=q, then=Value(3.0)),
        When(name__istartswith=q, then=Value(2.0)),
        When(name__icontains=q, then=Value(1.5)),
        When(description__icontains=q, then=Value(1.2)),
        default=Value(1.0),
        output_field=FloatField(),
    )
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import TrigramSimilarity

        score = score + TrigramSimilarity("name", q)
    return score


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
    tag_ids = list(Tag.objects.filter(name__icontains=q).values_list("pk", flat=True))
    results = _found(tables, fields, q, limit, tag_ids)
    if len(results) < limit and connection.vendor == "postgresql":
        # Names within a typo of q fill an answer that exact matches leave short; computing
        # similarity for every row costs more than all the exact matches together, and a
        # typo match ranks below a name that contains q anyway.
        seen = {(r["type"], r["id"]) for r in results}
        typos = _found(tables, fields, q, limit, tag_ids, typos=True)
        results += [r for r in typos if (r["type"], r["id"]) not in seen]
    results.sort(key=lambda r: (-r["score"], r["fqn"]))
    return results[:limit]


def _found(tables, fields, q, limit, tag_ids, typos=False):
    """The best `limit` tables and the best `limit` fields for q, as search results."""
    found = {}
    for queryset in _matching(tables, q, tag_ids, typos):
        rows = queryset.annotate(score=_score(q)).values(
            "id", "name", "fqn", "description", "score"
        )
        for r in rows.distinct().order_by("-score", "fqn")[:limit]:
            found["table", r["id"]] = {
                "type": "table",
                "id": r["id"],
                "name": r["name"],
                "fqn": r["fqn"],
                "table_id": r["id"],
                "description": r["description"],
                "score": round(r["score"], 4),
            }
    for queryset in _matching(fields, q, tag_ids, typos):
        rows = queryset.annotate(score=_score(q)).values(
            "id", "name", "table_id", "table__fqn", "description", "score"
        )
        for r in rows.distinct().order_by("-score", "table__fqn", "name")[:limit]:
            found["field", r["id"]] = {
                "type": "field",
                "id": r["id"],
                "name": r["name"],
                "fqn": f"{r['table__fqn']}.{r['name']}",
                "table_id": r["table_id"],
                "description": r["description"],
                "score": round(r["score"], 4),
            }
    return list(found.values())
