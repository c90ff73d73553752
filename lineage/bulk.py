"""Lineage's section of the bundle (governance.bulk): table edges and their field edges, with
the origin and status the file gives.

Edges are matched by (upstream, downstream) table, named by fully qualified name; a table
must be in the file or in the catalog (visible to the user). An edge needs the change
permission on its downstream table. The rows are written here in bulk rather than through
lineage.services.record_edges, which decides origin and status itself. The export holds the
edges whose two tables are both exported.
"""

from collections import defaultdict

from catalog.bulk.section import iso_time
from catalog.models import Field, Table
from governance import changelog
from governance.bulk.importer import CREATE, INVALID, SKIP
from governance.bulk.schema import TIMESTAMP
from governance.bulk.sections import Section
from governance.changelog import insert_objects
from governance.models import ChangeLogEntry

from .models import FieldLineageEdge, LineageEdge, LineageEvidence

EDGE_CHUNK = 2000
EDGE_KEYS = {"source", "target", "origin", "status", "confidence", "fields"}
EDGE_FIELD_KEYS = {"source", "target", "transformation"}
ORIGINS = ["manual", "inferred", "openlineage"]
STATUSES = ["approved", "pending", "rejected"]

EDGE = {
    "type": "object",
    "required": ["source", "target"],
    "additionalProperties": False,
    "properties": {
        "source": {"type": "string", "description": "Upstream table's fully qualified name."},
        "target": {"type": "string", "description": "Downstream table's fully qualified name."},
        "origin": {"enum": ORIGINS},
        "status": {"enum": STATUSES},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["source", "target"],
                "additionalProperties": False,
                "properties": {
                    "source": {"type": "string"},
                    "target": {"type": "string"},
                    "transformation": {"type": "string"},
                },
            },
        },
    },
}


class LineageSection(Section):
    name = "lineage"
    requires = ("catalog",)
    schema = {"lineage": {"type": "array", "items": EDGE}}
    counts = ("edges",)

    def __init__(self, run):
        super().__init__(run)
        self.catalog = run.section("catalog")

    # --- import ------------------------------------------------------------------------

    def plan(self):
        self.plan_edges()

    def check_permissions(self):
        if self.run.user.is_superuser:
            return
        targets = {
            self.catalog.table_ids[rec["_plan"]["target"]]
            for rec in self.run.doc.lineage
            if rec["_plan"] and rec["_plan"]["target"] not in self.catalog.by_fqn
        }
        changeable = self.catalog.changeable(targets)
        for rec in self.run.doc.lineage:
            plan = rec["_plan"]
            target = plan and plan["target"]
            if (
                target
                and target not in self.catalog.by_fqn
                and self.catalog.table_ids[target] not in changeable
            ):
                self.run.denied.append(f"lineage into table {target}")

    def apply(self):
        self.apply_edges()

    def plan_edges(self):
        origins = [value for value, _ in LineageEdge.origin.field.choices]
        elsewhere = set()
        pairs = {}
        for rec in self.run.doc.lineage:
            self.run.unknown_keys(rec, EDGE_KEYS)
            ends = []
            for key in ("source", "target"):
                value = self.run.coerce(rec, key, "text", 800) if key in rec else ""
                if value in ("", INVALID):
                    if value == "":
                        self.run.bad(rec, key, "the fully qualified name of a table is required")
                    ends.append(None)
                    continue
                ends.append(value)
                if value not in self.catalog.by_fqn:
                    elsewhere.add(value)
            origin = self.run.coerce(rec, "origin", "choice", origins) if "origin" in rec else SKIP
            origin = "manual" if origin is SKIP else origin
            status = (
                self.run.coerce(rec, "status", "choice", ["approved", "pending", "rejected"])
                if "status" in rec
                else SKIP
            )
            if status is SKIP:
                status = "approved" if origin == "manual" else "pending"
            confidence = (
                self.run.coerce(rec, "confidence", "number", None) if "confidence" in rec else None
            )
            field_pairs = []
            for item in rec["fields"]:
                self.run.unknown_keys(item, EDGE_FIELD_KEYS)
                up = self.run.coerce(item, "source", "text", 500) if "source" in item else ""
                down = self.run.coerce(item, "target", "text", 500) if "target" in item else ""
                for key, value in (("source", up), ("target", down)):
                    if value == "":
                        self.run.bad(item, key, "a field name is required")
                transformation = (
                    self.run.coerce(item, "transformation", "text", None)
                    if "transformation" in item
                    else ""
                )
                if INVALID in (up, down, transformation) or "" in (up, down):
                    continue
                if (up, down) in {(u, d) for u, d, _, _ in field_pairs}:
                    self.run.bad(item, "target", f"the field edge {up} -> {down} appears twice")
                    continue
                field_pairs.append((up, down, transformation, item))
            rec["_plan"] = {
                "source": ends[0],
                "target": ends[1],
                "origin": origin,
                "status": status,
                "confidence": 1.0 if confidence is None else confidence,
                "fields": field_pairs,
            }
            if None in ends or INVALID in (origin, status, confidence):
                rec["_plan"] = None
                continue
            if ends[0] == ends[1]:
                self.run.bad(rec, "target", f"a table cannot feed itself: {ends[0]}")
                rec["_plan"] = None
                continue
            pair = tuple(ends)
            if pair in pairs:
                self.run.bad(
                    rec,
                    "target",
                    f"the edge {ends[0]} -> {ends[1]} appears twice "
                    f"(first at {pairs[pair]['_loc']})",
                )
                rec["_plan"] = None
                continue
            pairs[pair] = rec
        # Tables named only by lineage must exist and be visible to the user.
        visible = Table.objects.restrict(self.run.user, "view")
        names = sorted(elsewhere)
        for start in range(0, len(names), 2000):
            chunk = names[start : start + 2000]
            self.catalog.table_ids.update(visible.filter(fqn__in=chunk).values_list("fqn", "pk"))
        for rec in self.run.doc.lineage:
            plan = rec["_plan"]
            if plan is None:
                continue
            for key in ("source", "target"):
                if plan[key] not in self.catalog.by_fqn and plan[key] not in self.catalog.table_ids:
                    self.run.bad(rec, key, f"no table {plan[key]!r} in the file or the catalog")
                    rec["_plan"] = None
                    break

    def apply_edges(self):
        records = [rec for rec in self.run.doc.lineage if rec["_plan"] is not None]
        total = max(len(records), 1)
        for start in range(0, len(records), EDGE_CHUNK):
            self.apply_edge_chunk(records[start : start + EDGE_CHUNK])
            done = min(start + EDGE_CHUNK, len(records))
            self.run.progress(80 + 20 * done / total, f"lineage {done} of {len(records)}")

    def apply_edge_chunk(self, records):
        ends = {}
        for rec in records:
            plan = rec["_plan"]
            ends[rec["_loc"]] = (
                self.catalog.table_ids.get(plan["source"]),
                self.catalog.table_ids.get(plan["target"]),
            )
        table_ids = {pk for pair in ends.values() for pk in pair if pk}
        downstream = {down for _, down in ends.values() if down}
        pairs = {pair for pair in ends.values() if None not in pair}
        existing = {
            (row["upstream_id"], row["downstream_id"]): row
            for row in LineageEdge.objects.filter(downstream_id__in=downstream).values(
                "id", "upstream_id", "downstream_id", "origin", "status", "confidence"
            )
            if (row["upstream_id"], row["downstream_id"]) in pairs
        }
        field_edges = {
            (row["upstream_id"], row["downstream_id"]): row
            for row in FieldLineageEdge.objects.filter(
                edge_id__in=[row["id"] for row in existing.values()]
            ).values("id", "upstream_id", "downstream_id", "transformation")
        }
        names = {n for rec in records for u, d, _, _ in rec["_plan"]["fields"] for n in (u, d)}
        field_ids = {}
        ids = sorted(table_ids)
        for start in range(0, len(ids), 1000):
            field_ids.update(
                ((table_id, name), pk)
                for table_id, name, pk in Field.objects.filter(
                    table_id__in=ids[start : start + 1000], name__in=names
                ).values_list("table_id", "name", "pk")
            )

        new_edges, new_field_edges, edge_updates, transformation_updates = [], [], [], []
        for rec in records:
            plan = rec["_plan"]
            up_id, down_id = ends[rec["_loc"]]
            resolved = []
            for up, down, transformation, item in plan["fields"]:
                up_field = self.field_ref(plan["source"], up_id, up, field_ids, item, "source")
                down_field = self.field_ref(
                    plan["target"], down_id, down, field_ids, item, "target"
                )
                if up_field is not None and down_field is not None:
                    resolved.append((up_field, down_field, transformation))
            have = existing.get((up_id, down_id))
            if have is None:
                self.run.counts["edges"]["created"] += 1
                edge = LineageEdge(
                    upstream=Table(pk=up_id, fqn=plan["source"]),
                    downstream=Table(pk=down_id, fqn=plan["target"]),
                    origin=plan["origin"],
                    status=plan["status"],
                    confidence=plan["confidence"],
                    created_by=self.run.user,
                    owner=self.run.user,
                    decided_by=self.run.user if plan["status"] != "pending" else None,
                    decided_at=self.run.now if plan["status"] != "pending" else None,
                )
                new_edges.append(edge)
                new_field_edges += [(edge, u, d, t, plan["origin"]) for u, d, t in resolved]
                continue
            if self.run.mode == CREATE:
                self.run.bad(
                    rec,
                    "target",
                    f"the edge {plan['source']} -> {plan['target']} already exists; create "
                    "never updates (use upsert)",
                )
                continue
            changed = {k: plan[k] for k in ("origin", "status", "confidence") if have[k] != plan[k]}
            if "status" in changed:
                changed["decided_by"] = self.run.user if plan["status"] != "pending" else None
                changed["decided_at"] = self.run.now if plan["status"] != "pending" else None
            fields_changed = False
            for u, d, t in resolved:
                known = field_edges.get((u, d))
                if known is None:
                    new_field_edges.append((have["id"], u, d, t, plan["origin"]))
                    fields_changed = True
                elif known["transformation"] != t:
                    transformation_updates.append((known["id"], t))
                    fields_changed = True
            if changed or fields_changed:
                edge_updates.append((have["id"], changed))
                self.run.counts["edges"]["updated"] += 1
            else:
                self.run.counts["edges"]["unchanged"] += 1
        if self.run.errors or self.run.dry_run:
            return
        insert_objects(new_edges)
        changes = [(e, ChangeLogEntry.Action.CREATE, None) for e in new_edges]
        if edge_updates:
            changes += self.run.update_rows(LineageEdge, edge_updates, ["upstream", "downstream"])
        changelog.record_many(LineageEdge, changes)
        insert_objects(
            [
                LineageEvidence(
                    edge=edge,
                    kind="manual",
                    key=f"import-{self.run.user.pk}",
                    snippet="imported from a catalog file",
                    created_by=self.run.user,
                )
                for edge in new_edges
            ]
        )
        insert_objects(
            [
                FieldLineageEdge(
                    edge_id=edge if isinstance(edge, int) else edge.pk,
                    upstream_id=u,
                    downstream_id=d,
                    transformation=t,
                    origin=origin,
                )
                for edge, u, d, t, origin in new_field_edges
            ]
        )
        if transformation_updates:
            loaded = FieldLineageEdge.objects.in_bulk([pk for pk, _ in transformation_updates])
            for pk, transformation in transformation_updates:
                loaded[pk].transformation = transformation
            FieldLineageEdge.objects.bulk_update(loaded.values(), ["transformation"])

    def field_ref(self, fqn, table_id, name, field_ids, item, key):
        """A field's id, or (dry run, new table) its name when the file declares it."""
        if table_id is not None and (table_id, name) in field_ids:
            return field_ids[(table_id, name)]
        rec = self.catalog.by_fqn.get(fqn)
        written = not (self.run.dry_run or self.run.errors)
        if rec is not None and not written and any(f.get("name") == name for f in rec["fields"]):
            return name
        self.run.bad(item, key, f"the table {fqn} has no field {name!r}")
        return None

    # --- export ------------------------------------------------------------------------

    def export(self):
        return {"lineage": iter_edges(self.run.user, self.catalog.tables)}


def iter_edges(user, tables):
    """Lineage whose two tables are both exported, in (upstream, downstream) name order."""
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
            yield from _edge_batch(batch)
            batch = []
    yield from _edge_batch(batch)


def _edge_batch(batch):
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
            "created_at": iso_time(row["created_at"]),
            "updated_at": iso_time(row["updated_at"]),
            "fields": fields[row["id"]],
        }
