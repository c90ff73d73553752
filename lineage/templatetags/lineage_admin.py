from django import template
from django.db.models import Count, Prefetch, Q

from catalog.models import Table

from ..models import LineageEdge, LineageEvidence

register = template.Library()
SHOWN = 100  # edges listed per direction; the edge list has the rest


@register.inclusion_tag("lineage/admin/table_lineage.html", takes_context=True)
def table_lineage(context, table):
    """The lineage panel of a table's admin page: the picture (drawn by lineage-picture.js
    from the admin's picture view) and the edges in and out, with their evidence. Tables
    the user may not view are shown as hidden, never named."""
    user = context["request"].user
    edges = (
        LineageEdge.objects.restrict(user, "view")
        .filter(Q(upstream=table) | Q(downstream=table))
        .select_related("upstream", "downstream", "created_by", "decided_by")
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
    referenced = {e.upstream_id for e in upstream} | {
        ev.view_id for e in upstream + downstream for ev in e.evidence.all() if ev.view_id
    }
    visible = set(
        Table.objects.restrict(user, "view").filter(pk__in=referenced).values_list("pk", flat=True)
    )
    for edge in upstream:
        edge.other = edge.upstream if edge.upstream_id in visible else None
    for edge in downstream:
        edge.other = edge.downstream
    for edge in upstream + downstream:
        # Evidence (a SQL text, a run) could name the hidden table: none for hidden edges.
        edge.shown_evidence = [
            (ev, ev.view if ev.view_id in visible else None)
            for ev in (edge.evidence.all() if edge.other is not None else ())
        ]
    counts = {
        "upstream": edges.filter(downstream=table).count(),
        "downstream": edges.filter(upstream=table).count(),
    }
    # Edges into tables the user may not view: counted, never listed.
    hidden_downstream = LineageEdge.objects.filter(upstream=table).count() - counts["downstream"]
    return {
        "table": table,
        "upstream": upstream,
        "downstream": downstream,
        "counts": counts,
        "shown": SHOWN,
        "hidden_downstream": hidden_downstream,
    }
