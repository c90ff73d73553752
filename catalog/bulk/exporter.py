"""The catalog export: the tables a user may view (with their fields, tags, owners and
classification decisions) and the lineage between them, streamed chunk by chunk so that
memory stays flat whatever the size. Secrets and sampled values are never part of it:
sources appear by name only, classifications by rule, tag, decision and hit ratio."""

import tempfile
from collections import defaultdict
from dataclasses import dataclass

from django.apps import apps
from django.db.models import Q
from django.utils import timezone

from governance import accesslog

from ..models import Classification, Field, Table, Tag
from . import formats

CHUNK = 500
EDGE_CHUNK = 2000
TABLE_KEYS = (
    "kind",
    "description",
    "comment",
    "owner",
    "tags",
    "data_domain",
    "purpose",
    "legal_basis",
    "retention_days",
    "residency_region",
    "criticality",
    "pci_scope",
    "view_definition",
)
TABLE_COLUMNS = [k for k in TABLE_KEYS if k not in ("owner", "tags")]
FIELD_COLUMNS = (
    "position",
    "data_type",
    "native_type",
    "nullable",
    "default",
    "is_primary_key",
    "foreign_key",
    "description",
    "comment",
)


class ExportRefused(ValueError):
    pass


@dataclass
class Export:
    chunks: object  # an iterator of bytes
    content_type: str
    filename: str
    tables: int


def _stamp(value):
    return value.isoformat() if value else None


def export_queryset(user, *, source=None, schema=None, tag=None, updated_since=None, selected=None):
    tables = Table.objects.restrict(user, "view").filter(removed=False)
    if selected is not None:  # a queryset of chosen tables (the admin action)
        tables = tables.filter(pk__in=selected.values("pk"))
    if source:
        tables = tables.filter(source__name=source)
    if schema:
        tables = tables.filter(schema=schema)
    if tag:
        category, dot, name = tag.partition(".")
        if not dot:
            raise ExportRefused(f'tag {tag!r} is not "Category.Name"')
        found = Tag.objects.filter(category__name=category, name=name).first()
        if found is None:
            raise ExportRefused(f"no tag {tag!r}")
        tables = tables.filter(
            Q(pk__in=Table.tags.through.objects.filter(tag=found).values("table_id"))
            | Q(pk__in=Field.objects.filter(tags=found, removed=False).values("table_id"))
        )
    if updated_since:
        tables = tables.filter(updated_at__gte=updated_since)
    return tables


def iter_tables(ids, progress=None):
    """Exported table dicts, in fully-qualified-name order, a chunk of tables at a time."""
    tag_names = {
        pk: f"{category}.{name}"
        for pk, category, name in Tag.objects.values_list("pk", "category__name", "name")
    }
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        table_tags = defaultdict(list)
        for table_id, tag_id in Table.tags.through.objects.filter(table_id__in=chunk).values_list(
            "table_id", "tag_id"
        ):
            table_tags[table_id].append(tag_names[tag_id])
        fields = defaultdict(list)
        field_rows = (
            Field.objects.filter(table_id__in=chunk, removed=False)
            .order_by("table_id", "position", "name")
            .values("id", "table_id", "name", *FIELD_COLUMNS, "created_at", "updated_at")
        )
        for row in field_rows:
            fields[row["table_id"]].append(row)
        field_tags = defaultdict(list)
        for field_id, tag_id in Field.tags.through.objects.filter(
            field__table_id__in=chunk, field__removed=False
        ).values_list("field_id", "tag_id"):
            field_tags[field_id].append(tag_names[tag_id])
        decisions = defaultdict(list)
        for row in (
            Classification.objects.filter(field__table_id__in=chunk, field__removed=False)
            .order_by("field_id", "rule")
            .values(
                "field_id",
                "rule",
                "tag_id",
                "status",
                "method",
                "hit_ratio",
                "sample_size",
                "decided_by__username",
                "decided_at",
            )
        ):
            decisions[row["field_id"]].append(
                {
                    "rule": row["rule"],
                    "tag": tag_names[row["tag_id"]],
                    "status": row["status"],
                    "method": row["method"],
                    "hit_ratio": row["hit_ratio"],
                    "sample_size": row["sample_size"],
                    "decided_by": row["decided_by__username"],
                    "decided_at": _stamp(row["decided_at"]),
                }
            )
        rows = (
            Table.objects.filter(pk__in=chunk)
            .order_by("fqn")
            .values(
                "id",
                "source__name",
                "schema",
                "name",
                "owner__username",
                "created_at",
                "updated_at",
                *TABLE_COLUMNS,
            )
        )
        for row in rows:
            table = {"source": row["source__name"], "schema": row["schema"], "name": row["name"]}
            for key in TABLE_KEYS:
                if key == "owner":
                    table["owner"] = row["owner__username"]
                elif key == "tags":
                    table["tags"] = sorted(table_tags[row["id"]])
                else:
                    table[key] = row[key]
            table["created_at"] = _stamp(row["created_at"])
            table["updated_at"] = _stamp(row["updated_at"])
            table["fields"] = [
                {
                    "name": item["name"],
                    **{key: item[key] for key in FIELD_COLUMNS},
                    "tags": sorted(field_tags[item["id"]]),
                    "classifications": decisions[item["id"]],
                    "created_at": _stamp(item["created_at"]),
                    "updated_at": _stamp(item["updated_at"]),
                }
                for item in fields[row["id"]]
            ]
            yield table
        if progress is not None:
            progress(min(start + CHUNK, len(ids)), len(ids))


def iter_edges(user, tables):
    """Lineage whose two tables are both exported, in (upstream, downstream) name order."""
    LineageEdge = apps.get_model("lineage", "LineageEdge")
    FieldLineageEdge = apps.get_model("lineage", "FieldLineageEdge")
    table_ids = tables.values("pk")
    edges = (
        LineageEdge.objects.restrict(user, "view")
        .filter(upstream__in=table_ids, downstream__in=table_ids)
        .order_by("upstream__fqn", "downstream__fqn")
        .values(
            "id",
            "upstream__fqn",
            "downstream__fqn",
            "origin",
            "status",
            "confidence",
            "created_at",
            "updated_at",
        )
    )
    batch = []
    for row in edges.iterator(chunk_size=EDGE_CHUNK):
        batch.append(row)
        if len(batch) >= EDGE_CHUNK:
            yield from _edge_batch(FieldLineageEdge, batch)
            batch = []
    yield from _edge_batch(FieldLineageEdge, batch)


def _edge_batch(FieldLineageEdge, batch):
    fields = defaultdict(list)
    for row in (
        FieldLineageEdge.objects.filter(edge_id__in=[e["id"] for e in batch])
        .order_by("upstream__name", "downstream__name")
        .values("edge_id", "upstream__name", "downstream__name", "transformation")
    ):
        fields[row["edge_id"]].append(
            {
                "source": row["upstream__name"],
                "target": row["downstream__name"],
                "transformation": row["transformation"],
            }
        )
    for row in batch:
        yield {
            "source": row["upstream__fqn"],
            "target": row["downstream__fqn"],
            "origin": row["origin"],
            "status": row["status"],
            "confidence": row["confidence"],
            "created_at": _stamp(row["created_at"]),
            "updated_at": _stamp(row["updated_at"]),
            "fields": fields[row["id"]],
        }


def _encoded(chunks):
    for text in chunks:
        if text:
            yield text.encode("utf-8")


def _xlsx_chunks(tables, edges):
    with tempfile.TemporaryFile(suffix=".xlsx") as handle:
        formats.write_xlsx(tables, edges, handle)
        handle.seek(0)
        while block := handle.read(256 * 1024):
            yield block


def catalog_export(*, user, format, filters=None, request=None, progress=None):
    """What the user may view, filtered, as a stream in `format`; records an access-log
    "export" entry."""
    if format not in formats.FORMATS:
        raise ExportRefused(
            f"unknown format {format!r}; choose one of {', '.join(formats.FORMATS)}"
        )
    filters = {k: v for k, v in (filters or {}).items() if v is not None and v != ""}
    tables = export_queryset(user, **filters)
    ids = list(tables.order_by("fqn").values_list("pk", flat=True))
    accesslog.record(
        "export",
        user=user,
        request=request,
        detail={
            "what": "catalog",
            "format": format,
            "filters": {k: str(v) for k, v in filters.items() if k != "selected"},
            "tables": len(ids),
        },
    )
    table_iter = iter_tables(ids, progress)
    edge_iter = iter_edges(user, tables)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    filename = f"catalog-{stamp}.{format}"
    if format == "xlsx":
        chunks = _xlsx_chunks(table_iter, edge_iter)
    else:
        writer = {"json": formats.write_json, "yaml": formats.write_yaml, "csv": formats.write_csv}
        chunks = _encoded(writer[format](table_iter, edge_iter))
    return Export(chunks, formats.CONTENT_TYPES[format], filename, len(ids))
