"""The optional Neo4j projection of lineage, active when NEO4J_BOLT_URL is set.

The relational tables stay the source of truth; Neo4j holds a copy for graph queries
(LINEAGE_GRAPH_BACKEND = "neo4j") and for people who explore lineage in Neo4j's tools:

    (:Table {table_id})-[:LINEAGE {edge_id, origin, status, confidence}]->(:Table)
    (:Field {field_id})-[:LINEAGE {field_edge_id, edge_id, origin, status, transformation}]
        ->(:Field),  (:Field)-[:IN_TABLE]->(:Table)

Every table is projected; fields only when they take part in field-level lineage. Edges of
every status are projected (queries filter on status). `sync(edge_ids)` refreshes some
edges after a commit (and removes those deleted since); `sync()` rebuilds everything and
sweeps what the database no longer holds, without emptying the graph meanwhile.
"""

import time
from contextlib import contextmanager

from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError
from neomodel import (
    FloatProperty,
    IntegerProperty,
    RelationshipFrom,
    RelationshipTo,
    StringProperty,
    StructuredNode,
    StructuredRel,
    db,
)

from catalog.models import Table

from .models import FieldLineageEdge, LineageEdge
from .projection import bolt_url

BATCH = 1000
UPSTREAM, DOWNSTREAM = "upstream", "downstream"


class Neo4jNotConfigured(RuntimeError):
    """The projection was asked for while NEO4J_BOLT_URL is not set."""


# Failures worth trying again later: the server restarting, a lost session, a deadlock.
RETRYABLE = (ServiceUnavailable, SessionExpired, TransientError)


class Lineage(StructuredRel):
    # Field-level relationships carry the id of the table edge they sit under as well.
    edge_id = IntegerProperty(index=True)
    field_edge_id = IntegerProperty(index=True)
    origin = StringProperty()
    status = StringProperty()
    confidence = FloatProperty()
    transformation = StringProperty()
    synced = IntegerProperty()


class TableNode(StructuredNode):
    __label__ = "Table"
    table_id = IntegerProperty(unique_index=True, required=True)
    fqn = StringProperty()
    name = StringProperty()
    schema = StringProperty()
    source_id = IntegerProperty()
    kind = StringProperty()
    synced = IntegerProperty()
    downstream = RelationshipTo("TableNode", "LINEAGE", model=Lineage)
    upstream = RelationshipFrom("TableNode", "LINEAGE", model=Lineage)


class FieldNode(StructuredNode):
    __label__ = "Field"
    field_id = IntegerProperty(unique_index=True, required=True)
    name = StringProperty()
    table_id = IntegerProperty(index=True)
    synced = IntegerProperty()
    table = RelationshipTo(TableNode, "IN_TABLE")
    downstream = RelationshipTo("FieldNode", "LINEAGE", model=Lineage)
    upstream = RelationshipFrom("FieldNode", "LINEAGE", model=Lineage)


class CypherRunner:
    """Runs Cypher on the Neo4j server NEO4J_BOLT_URL names, through neomodel's connection.
    The URL may hold credentials: it is never logged nor put in an error message."""

    def __init__(self, url):
        self.url = url
        db.set_connection(url=url)

    def run(self, query, params=None):
        rows, _ = db.cypher_query(query, params or {})
        return rows

    @contextmanager
    def transaction(self):
        with db.transaction:
            yield

    def install_schema(self):
        """Unique-id constraints on Table.table_id and Field.field_id, and the indexes."""
        db.install_labels(TableNode)
        db.install_labels(FieldNode)


_runner = None


def runner():
    global _runner
    url = bolt_url()
    if not url:
        raise Neo4jNotConfigured("NEO4J_BOLT_URL is not set")
    if _runner is None or _runner.url != url:
        _runner = CypherRunner(url)
    return _runner


UPSERT_TABLES = """
UNWIND $rows AS row
MERGE (t:Table {table_id: row.id})
SET t.fqn = row.fqn, t.name = row.name, t.schema = row.schema,
    t.source_id = row.source_id, t.kind = row.kind, t.synced = $synced
"""

DELETE_TABLES = """
MATCH (t:Table) WHERE t.table_id IN $ids
OPTIONAL MATCH (f:Field)-[:IN_TABLE]->(t)
DETACH DELETE f, t
"""

# Table and field relationships under the given table edges (both carry edge_id).
DELETE_EDGES = """
MATCH ()-[r:LINEAGE]->() WHERE r.edge_id IN $ids
DELETE r
"""

MERGE_EDGES = """
UNWIND $rows AS row
MATCH (u:Table {table_id: row.upstream}), (d:Table {table_id: row.downstream})
MERGE (u)-[r:LINEAGE {edge_id: row.id}]->(d)
SET r.origin = row.origin, r.status = row.status, r.confidence = row.confidence,
    r.synced = $synced
"""

MERGE_FIELD_EDGES = """
UNWIND $rows AS row
MATCH (ut:Table {table_id: row.upstream_table}), (dt:Table {table_id: row.downstream_table})
MERGE (uf:Field {field_id: row.upstream})
SET uf.name = row.upstream_name, uf.table_id = row.upstream_table, uf.synced = $synced
MERGE (df:Field {field_id: row.downstream})
SET df.name = row.downstream_name, df.table_id = row.downstream_table, df.synced = $synced
MERGE (uf)-[:IN_TABLE]->(ut)
MERGE (df)-[:IN_TABLE]->(dt)
MERGE (uf)-[r:LINEAGE {field_edge_id: row.id}]->(df)
SET r.edge_id = row.edge, r.origin = row.origin, r.status = row.status,
    r.transformation = row.transformation, r.synced = $synced
"""

# After a rebuild: whatever was not written since it started is gone from the database.
SWEEP_RELATIONSHIPS = """
MATCH ()-[r:LINEAGE]->() WHERE coalesce(r.synced, 0) < $started
DELETE r
"""

SWEEP_NODES = """
MATCH (n) WHERE (n:Table OR n:Field) AND coalesce(n.synced, 0) < $started
DETACH DELETE n
"""


def _now_ms():
    return int(time.time() * 1000)


def _batches(rows):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _table_rows(queryset):
    yield from queryset.values("id", "fqn", "name", "schema", "source_id", "kind").iterator()


def _edge_rows(queryset):
    fields = ("id", "upstream_id", "downstream_id", "origin", "status", "confidence")
    for row in queryset.values(*fields).iterator():
        yield {
            "id": row["id"],
            "upstream": row["upstream_id"],
            "downstream": row["downstream_id"],
            "origin": row["origin"],
            "status": row["status"],
            "confidence": row["confidence"],
        }


def _field_edge_rows(queryset):
    fields = (
        "id",
        "edge_id",
        "edge__status",
        "origin",
        "transformation",
        "upstream_id",
        "upstream__name",
        "upstream__table_id",
        "downstream_id",
        "downstream__name",
        "downstream__table_id",
    )
    for row in queryset.values(*fields).iterator():
        yield {
            "id": row["id"],
            "edge": row["edge_id"],
            "status": row["edge__status"],
            "origin": row["origin"],
            "transformation": row["transformation"],
            "upstream": row["upstream_id"],
            "upstream_name": row["upstream__name"],
            "upstream_table": row["upstream__table_id"],
            "downstream": row["downstream_id"],
            "downstream_name": row["downstream__name"],
            "downstream_table": row["downstream__table_id"],
        }


def sync(edge_ids=None, table_ids=(), progress=None):
    """Project lineage into Neo4j. With edge_ids: refresh those edges (their tables, field
    edges and status), removing the ones the database no longer has, and remove the
    deleted tables in table_ids; in one Neo4j transaction. Without: rebuild everything.
    progress(percent, message) is called during a rebuild. Returns counts."""
    cypher = runner()
    if edge_ids is None:
        return _rebuild(cypher, progress)
    counts = dict.fromkeys(("tables", "edges", "field_edges", "removed_tables"), 0)
    edge_ids = sorted({int(i) for i in edge_ids})
    table_ids = sorted({int(i) for i in table_ids})
    synced = _now_ms()
    with cypher.transaction():
        if table_ids:
            cypher.run(DELETE_TABLES, {"ids": table_ids})
            counts["removed_tables"] = len(table_ids)
        for chunk in _batches(edge_ids):
            edges = list(_edge_rows(LineageEdge.objects.filter(pk__in=chunk)))
            ends = {e["upstream"] for e in edges} | {e["downstream"] for e in edges}
            tables = list(_table_rows(Table.objects.filter(pk__in=ends)))
            field_edges = list(_field_edge_rows(FieldLineageEdge.objects.filter(edge__in=chunk)))
            cypher.run(DELETE_EDGES, {"ids": chunk})
            if tables:
                cypher.run(UPSERT_TABLES, {"rows": tables, "synced": synced})
            if edges:
                cypher.run(MERGE_EDGES, {"rows": edges, "synced": synced})
            if field_edges:
                cypher.run(MERGE_FIELD_EDGES, {"rows": field_edges, "synced": synced})
            counts["tables"] += len(tables)
            counts["edges"] += len(edges)
            counts["field_edges"] += len(field_edges)
    return counts


def _rebuild(cypher, progress):
    report = progress or (lambda percent, message: None)
    started = _now_ms()
    cypher.install_schema()
    steps = (
        ("tables", UPSERT_TABLES, _table_rows(Table.objects.order_by("pk"))),
        ("edges", MERGE_EDGES, _edge_rows(LineageEdge.objects.order_by("pk"))),
        (
            "field_edges",
            MERGE_FIELD_EDGES,
            _field_edge_rows(FieldLineageEdge.objects.order_by("pk")),
        ),
    )
    total = Table.objects.count() + LineageEdge.objects.count() + FieldLineageEdge.objects.count()
    counts, done = {}, 0
    for name, query, rows in steps:
        counts[name] = 0
        for batch in _batches(rows):
            cypher.run(query, {"rows": batch, "synced": started})
            counts[name] += len(batch)
            done += len(batch)
            report(90 * done // max(total, 1), f"{name.replace('_', ' ')}: {counts[name]}")
    report(95, "removing what the database no longer holds")
    cypher.run(SWEEP_RELATIONSHIPS, {"started": started})
    cypher.run(SWEEP_NODES, {"started": started})
    report(100, "done")
    return counts


def _levels_query(direction, depth):
    if direction not in (UPSTREAM, DOWNSTREAM):
        raise ValueError(f"direction must be upstream or downstream, not {direction!r}")
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 10:
        raise ValueError("depth must be an integer from 1 to 10")
    # A variable-length bound cannot be a parameter; depth is a checked integer.
    hops = f"[:LINEAGE*0..{depth - 1}]"
    if direction == UPSTREAM:
        path, step = f"(root)<-{hops}-(near:Table)", "(near)<-[e:LINEAGE]-(:Table)"
    else:
        path, step = f"(root)-{hops}->(near:Table)", "(near)-[e:LINEAGE]->(:Table)"
    # A path never repeats a relationship and is at most depth - 1 long, so cycles end.
    return f"""
MATCH (root:Table {{table_id: $root}})
MATCH p = {path}
WHERE all(r IN relationships(p) WHERE r.status IN $statuses)
WITH near, min(length(p)) AS distance
MATCH {step}
WHERE e.status IN $statuses
RETURN e.edge_id AS edge_id, min(distance) + 1 AS level
"""


def edge_levels(root_id, direction, depth, statuses):
    """{edge id: smallest level} within `depth` steps of table `root_id`, walking against
    (upstream) or along (downstream) the edges whose status is in `statuses`; an edge
    touching the root is level 1. The same answer as lineage.graph's database walk."""
    query = _levels_query(direction, depth)
    rows = runner().run(query, {"root": int(root_id), "statuses": list(statuses)})
    return {int(edge_id): int(level) for edge_id, level in rows}
