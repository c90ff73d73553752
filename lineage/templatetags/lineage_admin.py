from django import template
from django.db.models import Count, Prefetch, Q

from catalog.models import Table

from ..models import LineageEdge, LineageEvidence
from ..selectors import redact_evidence

register = template.Library()
SHOWN = 100  # edges listed per direction; the edge list has the rest


@register.inclusion_tag("lineage/admin/table_lineage.html", takes_context=True)
def table_lineage(context, table):
    """The lineage panel of a table's admin page: the picture (drawn by lineage-picture.js
    from the admin's picture view) and the edges in and out, with their evidence. Tables
    the user may not view are counted, never named."""
    user = context["request"].user
    touching = LineageEdge.objects.filter(Q(upstream=table) | Q(downstream=table))
    visible_edges = touching.restrict(user, "view")
    edges = (
        visible_edges.select_related("upstream", "downstream", "created_by", "decided_by")
        .prefetch_related(
            Prefetch(
                "evidence",
                queryset=LineageEvidence.objects.select_related("run__job", "created_by"),
            )
        )
        .annotate(field_edge_count=Count("field_edges"))
        .order_by("status", "id")
    )
    upstream = list(edges.filter(downstream=table)[:SHOWN])
    downstream = list(edges.filter(upstream=table)[:SHOWN])
    for edge in upstream:
        edge.other = edge.upstream
    for edge in downstream:
        edge.other = edge.downstream
    views = {ev.view_id for e in upstream + downstream for ev in e.evidence.all() if ev.view_id}
    visible = set(
        Table.objects.restrict(user, "view").filter(pk__in=views).values_list("pk", flat=True)
    )
    redact_evidence(user, [ev for edge in upstream + downstream for ev in edge.evidence.all()])
    for edge in upstream + downstream:
        edge.shown_evidence = [
            (ev, ev.view if ev.view_id in visible else None) for ev in edge.evidence.all()
        ]
    directions = {
        "upstream": Count("pk", filter=Q(downstream_id=table.pk)),
        "downstream": Count("pk", filter=Q(upstream_id=table.pk)),
    }
    counts = visible_edges.aggregate(**directions)
    # Edges from or into tables the user may not view: counted, never listed.
    everything = touching.aggregate(**directions)
    hidden = {direction: everything[direction] - counts[direction] for direction in directions}
    return {
        "table": table,
        "upstream": upstream,
        "downstream": downstream,
        "counts": counts,
        "shown": SHOWN,
        "hidden": hidden,
    }
