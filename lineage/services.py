"""The one way lineage is written: record_edges() for manual edges, SQL inference and
OpenLineage alike, decide() for a steward's approval or rejection,
retire_view_evidence() when a redefined view no longer reads a table, and merge_table()
when two catalog tables turn out to be one.

Callers run inside their own transaction (a scan, an API request, an OpenLineage event),
so the edges exist exactly when what produced them was committed.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from governance import changelog
from governance.models import ChangeLogEntry

from .models import (
    FieldLineageEdge,
    LineageEdge,
    LineageEvidence,
    LineageRun,
    Origin,
    Status,
)
from .tasks import neo4j_sync_on_commit


class LineageError(ValueError):
    """Lineage that cannot be recorded (a self-loop, a field outside its tables...)."""


@dataclass
class Evidence:
    kind: str  # LineageEvidence.Kind
    key: str  # identifies the evidence: SQL hash, view id, run id, user id
    sql_hash: str = ""
    snippet: str = ""
    view: object = None  # catalog.Table
    run: object = None  # LineageRun
    tables: list = field(default_factory=list)  # the catalog.Tables the snippet names


@dataclass
class EdgeSpec:
    upstream: object  # catalog.Table
    downstream: object  # catalog.Table
    evidence: Evidence
    # (upstream Field, downstream Field, transformation expression or "")
    fields: list = field(default_factory=list)
    confidence: float = 1.0


def record_edges(specs, *, origin, user=None):
    """Create or reinforce edges. One edge per (upstream, downstream) pair: a new pair gets an
    edge (approved when manual, pending otherwise); a known pair gains the evidence and the
    field edges it lacks. A manual assertion approves a pending edge; inference never
    reopens an edge a steward rejected. Returns (edges in spec order, counts)."""
    counts = dict.fromkeys(
        ("edges_created", "edges_existing", "edges_approved", "field_edges_created", "evidence"),
        0,
    )
    if not specs:
        return [], counts
    for spec in specs:
        if spec.upstream.pk == spec.downstream.pk:
            raise LineageError(f"a table cannot feed itself: {spec.upstream}")
        for up, down, _ in spec.fields:
            if up.table_id != spec.upstream.pk or down.table_id != spec.downstream.pk:
                raise LineageError(
                    f"field edge {up} -> {down} does not belong to "
                    f"{spec.upstream} -> {spec.downstream}"
                )
    now = timezone.now()
    manual = origin == Origin.MANUAL
    with transaction.atomic():
        pairs = {(s.upstream.pk, s.downstream.pk) for s in specs}
        existing = {
            (e.upstream_id, e.downstream_id): e
            for e in LineageEdge.objects.filter(
                upstream_id__in={u for u, _ in pairs}, downstream_id__in={d for _, d in pairs}
            )
            if (e.upstream_id, e.downstream_id) in pairs
        }
        new, approved = [], []
        for spec in specs:
            key = (spec.upstream.pk, spec.downstream.pk)
            edge = existing.get(key)
            if edge is None:
                edge = LineageEdge(
                    upstream=spec.upstream,
                    downstream=spec.downstream,
                    origin=origin,
                    status=Status.APPROVED if manual else Status.PENDING,
                    confidence=spec.confidence,
                    created_by=user,
                    decided_by=user if manual else None,
                    decided_at=now if manual else None,
                    owner=user,
                )
                existing[key] = edge
                new.append(edge)
            elif manual and edge.status != Status.APPROVED and edge not in approved:
                approved.append((edge, changelog.snapshot(edge)))
                edge.origin, edge.status = Origin.MANUAL, Status.APPROVED
                edge.decided_by, edge.decided_at, edge.updated_at = user, now, now
        LineageEdge.objects.bulk_create(new)
        if approved:
            LineageEdge.objects.bulk_update(
                [e for e, _ in approved],
                ["origin", "status", "decided_by", "decided_at", "updated_at"],
            )
        changelog.record_many(
            LineageEdge,
            [(e, ChangeLogEntry.Action.CREATE, None) for e in new]
            + [(e, ChangeLogEntry.Action.UPDATE, before) for e, before in approved],
        )
        counts["edges_created"] = len(new)
        counts["edges_existing"] = len(existing) - len(new)
        counts["edges_approved"] = len(approved)

        edges = [existing[(s.upstream.pk, s.downstream.pk)] for s in specs]
        edge_ids = [e.pk for e in edges]
        known_fields = set(
            FieldLineageEdge.objects.filter(edge_id__in=edge_ids).values_list(
                "upstream_id", "downstream_id"
            )
        )
        known_evidence = set(
            LineageEvidence.objects.filter(edge_id__in=edge_ids).values_list(
                "edge_id", "kind", "key"
            )
        )
        field_edges, evidence = [], []
        for spec, edge in zip(specs, edges, strict=True):
            for up, down, transformation in spec.fields:
                if (up.pk, down.pk) not in known_fields:
                    known_fields.add((up.pk, down.pk))
                    field_edges.append(
                        FieldLineageEdge(
                            edge=edge,
                            upstream=up,
                            downstream=down,
                            transformation=transformation or "",
                            origin=origin,
                        )
                    )
            ev = spec.evidence
            if (edge.pk, ev.kind, ev.key) not in known_evidence:
                known_evidence.add((edge.pk, ev.kind, ev.key))
                evidence.append(
                    LineageEvidence(
                        edge=edge,
                        kind=ev.kind,
                        key=ev.key[:100],
                        sql_hash=ev.sql_hash,
                        snippet=ev.snippet,
                        tables=named_tables(ev.tables),
                        view=ev.view,
                        run=ev.run,
                        created_by=user,
                    )
                )
        FieldLineageEdge.objects.bulk_create(field_edges, batch_size=2000)
        LineageEvidence.objects.bulk_create(evidence, batch_size=2000)
        counts["field_edges_created"] = len(field_edges)
        counts["evidence"] = len(evidence)
        neo4j_sync_on_commit(edge_ids)
    return edges, counts


def named_tables(tables):
    """LineageEvidence.tables: each table once, as [id, name], in id order."""
    return [[pk, name] for pk, name in sorted({(t.pk, t.name) for t in tables})]


def decide(edges, *, status, user):
    """A steward approves or rejects edges (with their field edges)."""
    if status not in (Status.APPROVED, Status.REJECTED):
        raise LineageError(f"an edge is approved or rejected, not {status!r}")
    now = timezone.now()
    with transaction.atomic():
        for edge in edges:
            edge.status, edge.decided_by, edge.decided_at = status, user, now
            edge.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
        neo4j_sync_on_commit([edge.pk for edge in edges])
    return edges


def retire_view_evidence(views):
    """Before recording what views' definitions read now: `views` maps each view whose
    definition was just read to (its Evidence now, {id of each table it reads now: the
    (upstream field id, view field id) pairs it gives}).

    Evidence a view gave for a table it no longer reads is removed; the rest is brought up to
    the current definition. An edge left without any evidence was only ever that view's:
    it is deleted while pending, goes back to pending if a steward had approved it (to decide
    again on lineage no definition shows any more), and stays if rejected, so that inference
    still never reopens it. An edge whose only evidence is the redefined view also loses the
    inferred field edges the new definition no longer gives. Returns counts."""
    counts = dict.fromkeys(("edges_retired", "edges_reopened", "field_edges_retired"), 0)
    by_key = {str(view_id): value for view_id, value in views.items()}
    rows = LineageEvidence.objects.filter(
        kind=LineageEvidence.Kind.VIEW,
        key__in=by_key,
        edge__downstream_id__in=list(views),
    ).values_list("pk", "key", "sql_hash", "edge_id", "edge__upstream_id")
    stale, outdated, touched, redefined = [], {}, set(), {}
    for pk, key, sql_hash, edge_id, upstream_id in rows:
        evidence, reads = by_key[key]
        if upstream_id not in reads:
            stale.append(pk)
            touched.add(edge_id)
        elif sql_hash != evidence.sql_hash:
            outdated.setdefault(key, []).append(pk)
            redefined[edge_id] = reads[upstream_id]
    for key, pks in outdated.items():
        evidence = by_key[key][0]
        LineageEvidence.objects.filter(pk__in=pks).update(
            sql_hash=evidence.sql_hash,
            snippet=evidence.snippet,
            tables=named_tables(evidence.tables),
        )
    counts["field_edges_retired"] = _retire_field_edges(redefined)
    if not stale:
        return counts
    LineageEvidence.objects.filter(pk__in=stale).delete()
    orphans = (
        LineageEdge.objects.filter(pk__in=touched)
        .annotate(evidence_count=Count("evidence"))
        .filter(evidence_count=0)
    )
    for edge in orphans:
        if edge.status == Status.PENDING:
            edge.delete()
            counts["edges_retired"] += 1
        elif edge.status == Status.APPROVED:
            edge.status, edge.decided_by, edge.decided_at = Status.PENDING, None, None
            edge.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
            neo4j_sync_on_commit([edge.pk])
            counts["edges_reopened"] += 1
    return counts


def _retire_field_edges(redefined):
    """{edge id: the field pairs its redefined view gives now}: inferred field edges outside
    those pairs go, on edges that have no other evidence to have come from."""
    only_view = [
        edge_id
        for edge_id, n in LineageEvidence.objects.filter(edge_id__in=list(redefined))
        .values("edge_id")
        .annotate(n=Count("pk"))
        .values_list("edge_id", "n")
        if n == 1
    ]
    gone = [
        pk
        for pk, edge_id, up, down in FieldLineageEdge.objects.filter(
            edge_id__in=only_view, origin=Origin.INFERRED
        ).values_list("pk", "edge_id", "upstream_id", "downstream_id")
        if (up, down) not in redefined[edge_id]
    ]
    if gone:
        FieldLineageEdge.objects.filter(pk__in=gone).delete()
        neo4j_sync_on_commit(only_view)
    return len(gone)


def merge_table(old, new):
    """`old` and `new` are one table (an external table OpenLineage made before a scan found
    the real one): old's edges, field edges (matched to new's fields by name), evidence and
    runs move to `new`, its description and tags too where new has none, and old goes.

    Where new already has an edge with the same other end, the two become one: it gains the
    evidence it lacks, and a steward's decision on either, if it had none. An edge between
    the two tables, and a field edge whose field new does not have, go."""
    fields = {f.name.lower(): f.pk for f in new.fields.all()}
    field_map = {f.pk: fields.get(f.name.lower()) for f in old.fields.all()}
    moved = []
    for edge in LineageEdge.objects.filter(Q(upstream=old) | Q(downstream=old)):
        up = new.pk if edge.upstream_id == old.pk else edge.upstream_id
        down = new.pk if edge.downstream_id == old.pk else edge.downstream_id
        if up == down:
            edge.delete()
            continue
        keep = LineageEdge.objects.filter(upstream_id=up, downstream_id=down).first()
        if keep is None:
            edge.upstream_id, edge.downstream_id = up, down
            edge.save(update_fields=["upstream", "downstream", "updated_at"])
            keep = edge
        elif keep.status == Status.PENDING and edge.status != Status.PENDING:
            keep.status, keep.decided_by, keep.decided_at = (
                edge.status,
                edge.decided_by,
                edge.decided_at,
            )
            keep.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
        if keep is not edge:
            known = set(keep.evidence.values_list("kind", "key"))
            edge.evidence.exclude(
                pk__in=[e.pk for e in edge.evidence.all() if (e.kind, e.key) in known]
            ).update(edge=keep)
        _move_field_edges(edge, keep, field_map)
        if keep is not edge:
            edge.delete()
        moved.append(keep.pk)
    for relation in (LineageRun.inputs, LineageRun.outputs):
        through = relation.through
        has_new = through.objects.filter(table_id=new.pk).values("lineagerun_id")
        through.objects.filter(table_id=old.pk).exclude(lineagerun_id__in=has_new).update(
            table_id=new.pk
        )
    if old.description and not new.description:
        new.description = old.description
        new.save(update_fields=["description", "updated_at"])
    new.tags.add(*old.tags.all())
    old.delete()
    neo4j_sync_on_commit(moved)
    return moved


def _move_field_edges(edge, keep, field_map):
    known = set(FieldLineageEdge.objects.filter(edge=keep).values_list("upstream", "downstream"))
    for field_edge in FieldLineageEdge.objects.filter(edge=edge):
        up = field_map.get(field_edge.upstream_id, field_edge.upstream_id)
        down = field_map.get(field_edge.downstream_id, field_edge.downstream_id)
        if up is None or down is None or up == down or (up, down) in known:
            field_edge.delete()
            continue
        known.add((up, down))
        field_edge.edge, field_edge.upstream_id, field_edge.downstream_id = keep, up, down
        field_edge.save(update_fields=["edge", "upstream", "downstream"])
