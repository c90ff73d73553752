from django.db import transaction
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from catalog.models import Field, Table
from governance.api.viewsets import GovernedGenericViewSet
from governance.permissions import can, perm_name

from .. import graph, services
from ..filtersets import LineageEdgeFilterSet
from ..models import FieldLineageEdge, LineageEdge, LineageEvidence, Origin, Status
from .serializers import (
    FieldEdgeRequestSerializer,
    GraphQuerySerializer,
    GraphSerializer,
    ImpactQuerySerializer,
    ImpactSerializer,
    LineageEdgeSerializer,
    TableEdgeRequestSerializer,
)

TABLE_ID = OpenApiParameter("table_id", int, OpenApiParameter.PATH)


def _visible(model, user, pk, name):
    """The object the user may view, or a 400 naming the field: a hidden object answers
    exactly like a missing one."""
    obj = model.objects.restrict(user, "view").filter(pk=pk).first()
    if obj is None:
        raise serializers.ValidationError(
            {name: [f"no {model._meta.verbose_name} with id {pk} (or you may not view it)"]}
        )
    return obj


def _may_change(user, table, name):
    if not can(user, "change", table):
        raise PermissionDenied(
            f"You may not change {name} {table.fqn}: lineage into a table "
            "needs the change permission on it."
        )


def _lineage_error(exc):
    return serializers.ValidationError({"detail": [str(exc)]})


class LineageEdgeViewSet(
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    mixins.DestroyModelMixin,
    GovernedGenericViewSet,
):
    """Table edges with their evidence and field edges; graph walks from a table."""

    queryset = LineageEdge.objects.select_related(
        "upstream", "downstream", "created_by", "decided_by"
    ).prefetch_related(
        Prefetch("evidence", queryset=LineageEvidence.objects.select_related("run", "created_by")),
        Prefetch(
            "field_edges",
            queryset=FieldLineageEdge.objects.select_related("upstream", "downstream"),
        ),
    )
    serializer_class = LineageEdgeSerializer
    filterset_class = LineageEdgeFilterSet
    ordering_fields = ["id", "created_at", "confidence", "status", "decided_at"]
    lookup_value_regex = "[0-9]+"
    action_permissions = {
        **GovernedGenericViewSet.action_permissions,
        "approve": "change",
        "reject": "change",
    }

    @transaction.atomic
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def _require_some_change(self, request):
        # Before reading the body: a user who may change no table may record no lineage.
        user = request.user
        if user.is_superuser or user.has_perm(perm_name(Table, "change")):
            return
        if not Table.objects.restrict(user, "change").exists():
            self.permission_denied(request, message="You may not change any table.")

    def _edge_response(self, edge, created):
        edge = self.get_queryset().get(pk=edge.pk)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(self.get_serializer(edge).data, status=code)

    @extend_schema(
        request=TableEdgeRequestSerializer,
        responses={201: LineageEdgeSerializer, 200: LineageEdgeSerializer},
    )
    @action(detail=False, methods=["post"], url_path="table")
    def table(self, request):
        """Record a manual table edge (approved at once); an existing pair gains the evidence."""
        self._require_some_change(request)
        body = TableEdgeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = request.user
        upstream = _visible(Table, user, body.validated_data["source_table_id"], "source_table_id")
        downstream = _visible(
            Table, user, body.validated_data["target_table_id"], "target_table_id"
        )
        if upstream.pk == downstream.pk:
            raise serializers.ValidationError(
                {"target_table_id": ["a table cannot feed itself (self-loop)"]}
            )
        _may_change(user, downstream, "target table")
        spec = services.EdgeSpec(upstream, downstream, self._evidence(request))
        with transaction.atomic():
            try:
                (edge,), counts = services.record_edges([spec], origin=Origin.MANUAL, user=user)
            except services.LineageError as exc:
                raise _lineage_error(exc) from exc
        return self._edge_response(edge, counts["edges_created"] > 0)

    @extend_schema(
        request=FieldEdgeRequestSerializer,
        responses={201: LineageEdgeSerializer, 200: LineageEdgeSerializer},
    )
    @action(detail=False, methods=["post"], url_path="field")
    def field(self, request):
        """Record a manual field edge, under the table edge between the fields' tables
        (created or reused). Answers that table edge."""
        self._require_some_change(request)
        body = FieldEdgeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data, user = body.validated_data, request.user
        upstream = _visible(Field, user, data["source_field_id"], "source_field_id")
        downstream = _visible(Field, user, data["target_field_id"], "target_field_id")
        if upstream.table_id == downstream.table_id:
            raise serializers.ValidationError(
                {"target_field_id": ["lineage links fields of two different tables"]}
            )
        _may_change(user, downstream.table, "target table")
        spec = services.EdgeSpec(
            upstream.table,
            downstream.table,
            self._evidence(request),
            fields=[(upstream, downstream, data["transformation"])],
        )
        with transaction.atomic():
            try:
                (edge,), counts = services.record_edges([spec], origin=Origin.MANUAL, user=user)
            except services.LineageError as exc:
                raise _lineage_error(exc) from exc
        created = counts["edges_created"] + counts["field_edges_created"] > 0
        return self._edge_response(edge, created)

    @staticmethod
    def _evidence(request):
        user = request.user
        return services.Evidence(
            kind=LineageEvidence.Kind.MANUAL,
            key=f"user:{user.pk}",
            snippet=f"asserted by {user.get_username()}",
        )

    def _decide(self, status_value):
        edge = self.get_object()
        services.decide([edge], status=status_value, user=self.request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=edge.pk)).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._decide(Status.APPROVED)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._decide(Status.REJECTED)

    @extend_schema(responses=LineageEdgeSerializer(many=True))
    @action(detail=False, methods=["get"])
    def pending(self, request):
        """Edges waiting for a steward's decision."""
        queryset = self.filter_queryset(self.get_queryset()).filter(status=Status.PENDING)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def _root(self, table_id):
        table = Table.objects.restrict(self.request.user, "view").filter(pk=table_id).first()
        if table is None:
            raise NotFound("No such table.")
        return table

    def _walk(self, request, table_id, direction):
        query = GraphQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        root = self._root(table_id)
        answer = graph.lineage(
            request.user,
            root,
            direction,
            depth=query.validated_data["depth"],
            statuses=query.validated_data["status"],
            fields=query.validated_data["fields"],
        )
        return Response(answer)

    @extend_schema(parameters=[TABLE_ID, GraphQuerySerializer], responses=GraphSerializer)
    @action(detail=False, methods=["get"], url_path=r"table/(?P<table_id>[0-9]+)/upstream")
    def upstream(self, request, table_id=None):
        """What feeds the table, level by level."""
        return self._walk(request, table_id, graph.UPSTREAM)

    @extend_schema(parameters=[TABLE_ID, GraphQuerySerializer], responses=GraphSerializer)
    @action(detail=False, methods=["get"], url_path=r"table/(?P<table_id>[0-9]+)/downstream")
    def downstream(self, request, table_id=None):
        """What the table feeds, level by level."""
        return self._walk(request, table_id, graph.DOWNSTREAM)

    @extend_schema(parameters=[TABLE_ID, ImpactQuerySerializer], responses=ImpactSerializer)
    @action(detail=False, methods=["get"], url_path=r"table/(?P<table_id>[0-9]+)/impact")
    def impact(self, request, table_id=None):
        """Every downstream table with its owner and depth: whom to tell before a change."""
        query = ImpactQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        root = self._root(table_id)
        return Response(
            graph.impact(
                request.user,
                root,
                depth=query.validated_data["depth"],
                statuses=query.validated_data["status"],
            )
        )
