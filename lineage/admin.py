from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html

from catalog.admin import TableAdmin
from catalog.models import Table
from governance.admin import GovernedAdmin
from governance.permissions import can
from sources.models import DataSource

from . import graph
from .models import (
    FieldLineageEdge,
    LineageEdge,
    LineageEvidence,
    LineageNamespace,
    Origin,
    Status,
)
from .selectors import redact_evidence
from .services import EdgeSpec, Evidence, LineageError, decide, record_edges


class ReadOnlyUnderEdge(admin.TabularInline):
    """Evidence and field edges are written by lineage.services only; anyone who may view
    the edge sees them."""

    extra = 0
    can_delete = False
    related = ()

    def has_view_permission(self, request, obj=None):
        return obj is not None and can(request.user, "view", obj)

    def get_queryset(self, request):
        # The formset only holds rows under the edge, whose permission was checked above.
        return self.model._default_manager.select_related(*self.related)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EvidenceInline(ReadOnlyUnderEdge):
    model = LineageEvidence
    related = ("view", "run__job", "created_by")
    fields = ["kind", "snippet", "sql_hash", "view", "run", "created_by", "created_at"]
    readonly_fields = fields

    def get_formset(self, request, obj=None, **kwargs):
        """The rows as the user may read them: names of tables they may not view redacted."""
        formset = super().get_formset(request, obj, **kwargs)

        class Redacted(formset):
            def get_queryset(self):
                rows = super().get_queryset()
                redact_evidence(request.user, rows)
                return rows

        return Redacted


class FieldEdgeInline(ReadOnlyUnderEdge):
    model = FieldLineageEdge
    related = ("upstream__table", "downstream__table")
    fields = ["upstream", "downstream", "transformation", "origin", "created_at"]
    readonly_fields = fields


class SourceFilter(admin.SimpleListFilter):
    """Edges that start or end in a source the user may view."""

    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        sources = DataSource.objects.restrict(request.user, "view").order_by("name")
        return [(str(s.pk), s.name) for s in sources.only("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(Q(upstream__source=value) | Q(downstream__source=value))
        return queryset


@admin.register(LineageEdge)
class LineageEdgeAdmin(GovernedAdmin):
    list_display = [
        "id",
        "upstream",
        "downstream",
        "origin",
        "status_badge",
        "confidence",
        "evidence_count",
        "field_edge_count",
        "created_by",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["status", "origin", SourceFilter]
    search_fields = ["upstream__fqn", "downstream__fqn"]
    list_select_related = ["upstream", "downstream", "created_by", "decided_by"]
    inlines = [FieldEdgeInline, EvidenceInline]
    actions = ["approve_selected", "reject_selected"]
    change_list_template = "lineage/admin/edge_change_list.html"
    readonly_fields = [
        "origin",
        "status_badge",
        "confidence",
        "created_by",
        "decided_by",
        "decided_at",
        "created_at",
        "updated_at",
    ]
    autocomplete_fields = ["upstream", "downstream"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["upstream", "downstream", "description"]
        return ["upstream", "downstream", *self.readonly_fields, "owner", "description"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["upstream", "downstream", *self.readonly_fields]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _evidence=Count("evidence", distinct=True),
                _field_edges=Count("field_edges", distinct=True),
            )
        )

    def has_add_permission(self, request):
        # Drawing an edge into a table is changing that table (as in the API).
        return Table.objects.restrict(request.user, "change").exists()

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # A steward's edge goes through the one write path: approved, with its evidence.
        try:
            edges, _ = record_edges(
                [
                    EdgeSpec(
                        upstream=obj.upstream,
                        downstream=obj.downstream,
                        evidence=Evidence(kind="manual", key=f"user:{request.user.pk}"),
                    )
                ],
                origin=Origin.MANUAL,
                user=request.user,
            )
        except LineageError as exc:
            raise PermissionDenied(str(exc)) from exc
        edge = edges[0]
        if obj.description and edge.description != obj.description:
            edge.description = obj.description
            edge.save(update_fields=["description", "updated_at"])
        obj.pk, obj._state.adding, obj._state.db = edge.pk, False, edge._state.db

    @admin.display(description="status", ordering="status")
    def status_badge(self, edge):
        colours = {Status.APPROVED: "#2e7d32", Status.PENDING: "#e65100"}
        return format_html(
            '<span style="color:{};font-weight:bold">{}</span>',
            colours.get(edge.status, "#757575"),
            edge.get_status_display(),
        )

    @admin.display(description="evidence", ordering="_evidence")
    def evidence_count(self, edge):
        return edge._evidence

    @admin.display(description="field edges", ordering="_field_edges")
    def field_edge_count(self, edge):
        return edge._field_edges

    def _decide(self, request, queryset, status):
        selected = list(queryset.select_related("downstream__source"))
        allowed = [edge for edge in selected if can(request.user, "change", edge)]
        decide(allowed, status=status, user=request.user)
        skipped = len(selected) - len(allowed)
        self.message_user(
            request,
            f"{len(allowed)} edge(s) {status}"
            + (f"; {skipped} you may not change were skipped" if skipped else ""),
            messages.SUCCESS if not skipped else messages.WARNING,
        )

    @admin.action(description="Approve selected lineage edges")
    def approve_selected(self, request, queryset):
        self._decide(request, queryset, Status.APPROVED)

    @admin.action(description="Reject selected lineage edges")
    def reject_selected(self, request, queryset):
        self._decide(request, queryset, Status.REJECTED)

    def changelist_view(self, request, extra_context=None):
        pending = self.get_queryset(request).filter(status=Status.PENDING).count()
        context = {"pending_count": pending, **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "pending/",
                self.admin_site.admin_view(self.pending_view),
                name=f"{prefix}_pending",
            ),
            path(
                "table/<int:table_id>/picture/",
                self.admin_site.admin_view(self.picture_view),
                name=f"{prefix}_picture",
            ),
            *super().get_urls(),
        ]

    def pending_view(self, request):
        """The pending-lineage queue: the edges waiting for a steward, oldest first."""
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        return redirect(f"{url}?status__exact={Status.PENDING}&o=1")

    def picture_view(self, request, table_id):
        """Upstream and downstream of a table as the user may see them (hidden tables are
        a count), for the picture on the table's page."""
        table = Table.objects.restrict(request.user, "view").filter(pk=table_id).first()
        if table is None:
            raise Http404("no such table")
        raw = request.GET.get("depth", "1")
        if not raw.isdigit() or not graph.MIN_DEPTH <= int(raw) <= graph.MAX_DEPTH:
            return JsonResponse(
                {
                    "depth": [
                        f"depth must be an integer from {graph.MIN_DEPTH} to {graph.MAX_DEPTH}"
                    ]
                },
                status=400,
            )
        depth = int(raw)
        return JsonResponse(
            {
                direction: graph.lineage(request.user, table, direction, depth)
                for direction in graph.DIRECTIONS
            }
        )


# The catalog cannot import lineage; lineage adds its panel to the table's page.
TableAdmin.change_form_template = "lineage/admin/table_change_form.html"


@admin.register(LineageNamespace)
class LineageNamespaceAdmin(GovernedAdmin):
    """OpenLineage namespaces that name a source under another address (a proxy, an alias)."""

    list_display = ("namespace", "source")
    list_select_related = ("source",)
    search_fields = ("namespace", "source__name")
