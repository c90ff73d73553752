from dataclasses import asdict

from django.db import transaction
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from governance.api.mixins import VersionHistoryMixin
from governance.api.serializers import JobRunSerializer
from governance.api.viewsets import GovernedGenericViewSet, GovernedViewSet
from governance.models import JobRun
from sources.connectors import ConnectorError
from sources.models import DataSource

from .. import selectors, services
from ..filtersets import FieldFilterSet, TableFilterSet
from ..models import Classification, Field, Table, Tag, TagCategory
from ..tasks import scan_source
from .serializers import (
    ClassificationDetailSerializer,
    ConnectorErrorSerializer,
    FieldSerializer,
    IntrospectedTableSerializer,
    IntrospectRequestSerializer,
    ScheduledTaskSerializer,
    SchemaVersionSerializer,
    TableSerializer,
    TagCategorySerializer,
    TagSerializer,
    TagUseSerializer,
)

INTROSPECT_STATUS = {"not_found": 404, "blocked": 400, "auth": 400}


class TableViewSet(VersionHistoryMixin, GovernedViewSet):
    queryset = (
        Table.objects.select_related("source", "owner")
        .prefetch_related("tags__category")
        .order_by("fqn")
    )
    serializer_class = TableSerializer
    filterset_class = TableFilterSet
    ordering_fields = ["fqn", "name", "row_count", "created_at", "updated_at"]
    action_permissions = {
        **GovernedViewSet.action_permissions,
        "fields": "view",
        "batch_fields": "change",
    }

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action in ("list", "retrieve"):
            return selectors.tables_for_reading(queryset)
        return queryset

    @extend_schema(responses=SchemaVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        page = self.paginate_queryset(self.get_object().versions.order_by("-version"))
        return self.get_paginated_response(SchemaVersionSerializer(page, many=True).data)

    @extend_schema(methods=["GET"], responses=FieldSerializer(many=True))
    @extend_schema(methods=["POST"], request=FieldSerializer, responses={201: FieldSerializer})
    @action(detail=True, methods=["get", "post"])
    def fields(self, request, pk=None):
        table = self.get_object()
        if request.method == "GET":
            queryset = FieldViewSet.queryset.filter(table=table)
            page = self.paginate_queryset(queryset)
            return self.get_paginated_response(FieldSerializer(page, many=True).data)
        self.recheck(table, "change")
        serializer = FieldSerializer(
            data=request.data, context={**self.get_serializer_context(), "table": table}
        )
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            serializer.save(table=table)
        return Response(serializer.data, status=status.HTTP_201_CREATED)

    @extend_schema(request=FieldSerializer(many=True), responses={201: FieldSerializer(many=True)})
    @action(detail=True, methods=["post"], url_path="fields/batch", pagination_class=None)
    def batch_fields(self, request, pk=None):
        """Create many fields at once: all or nothing, every item's errors by index."""
        table = self.get_object()
        if not isinstance(request.data, list) or not request.data:
            raise serializers.ValidationError({"detail": "expected a non-empty JSON list"})
        items = [
            FieldSerializer(data=item, context={**self.get_serializer_context(), "table": table})
            for item in request.data
        ]
        errors = {index: s.errors for index, s in enumerate(items) if not s.is_valid()}
        seen = set()
        for index, item in enumerate(items):
            name = None if item.errors else item.validated_data.get("name")
            if name in seen:
                errors.setdefault(index, {})["name"] = [f"{name!r} appears more than once"]
            seen.add(name)
        if errors:
            return Response({"errors": errors}, status=status.HTTP_400_BAD_REQUEST)
        with transaction.atomic():
            created = [item.save(table=table) for item in items]
        return Response(FieldSerializer(created, many=True).data, status=status.HTTP_201_CREATED)


class FieldViewSet(VersionHistoryMixin, GovernedViewSet):
    queryset = Field.objects.select_related("table").prefetch_related(
        "tags__category",
        Prefetch(
            "classifications", queryset=Classification.objects.select_related("tag__category")
        ),
    )
    serializer_class = FieldSerializer
    filterset_class = FieldFilterSet
    ordering_fields = ["name", "position", "created_at"]
    http_method_names = ["get", "put", "patch", "delete", "head", "options"]


class SourceCatalogViewSet(GovernedGenericViewSet):
    """The catalog's actions on a source: scan it, and list its scans."""

    queryset = DataSource.objects.all()
    serializer_class = JobRunSerializer
    action_permissions = {"scan": "change", "scans": "view", "introspect_table": "change"}

    @extend_schema(request=None, responses={202: JobRunSerializer})
    @action(detail=True, methods=["post"])
    def scan(self, request, pk=None):
        job, _ = services.scan_enqueue(source=self.get_object(), user=request.user)
        return Response(JobRunSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=JobRunSerializer(many=True))
    @action(detail=True, methods=["get"])
    def scans(self, request, pk=None):
        source = self.get_object()
        runs = JobRun.objects.filter(task=scan_source.name, target_id=source.pk)
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(JobRunSerializer(page, many=True).data)

    @extend_schema(
        request=IntrospectRequestSerializer,
        responses={
            200: IntrospectedTableSerializer,
            404: ConnectorErrorSerializer,
            502: ConnectorErrorSerializer,
        },
        description="A 404 when the table does not exist; a 502 when the source cannot be "
        "reached or fails (error_kind: dns, refused, timeout, tls, other).",
    )
    @action(
        detail=True, methods=["post"], url_path="introspect/table", throttle_scope="connection-test"
    )
    def introspect_table(self, request, pk=None):
        """One table's metadata straight from the source, without saving anything."""
        source = self.get_object()
        body = IntrospectRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            meta = services.introspect_table(source=source, **body.validated_data)
        except ConnectorError as exc:
            code = INTROSPECT_STATUS.get(exc.kind, status.HTTP_502_BAD_GATEWAY)
            return Response({"detail": exc.message, "error_kind": exc.kind}, status=code)
        return Response(asdict(meta))

    @extend_schema(responses=ScheduledTaskSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="scheduled-tasks", pagination_class=None)
    def scheduled_tasks(self, request, pk=None):
        """The source's schedules with their last and next run and the last scan's status."""
        return Response(services.scheduled_tasks(self.get_object()))

    @extend_schema(responses=TagUseSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def tags(self, request, pk=None):
        """Which tags the source's tables and fields carry, with counts."""
        return Response(services.tag_summary(self.get_object()))

    @extend_schema(responses=TableSerializer(many=True))
    @action(detail=True, methods=["get"])
    def catalog(self, request, pk=None):
        """The source's tables with field counts, tags and last scan."""
        source = self.get_object()
        tables = TableViewSet.queryset.filter(source=source, removed=False)
        page = self.paginate_queryset(tables)
        return self.get_paginated_response(TableSerializer(page, many=True).data)


class TagCategoryViewSet(GovernedViewSet):
    queryset = TagCategory.objects.all()
    serializer_class = TagCategorySerializer
    filterset_fields = ["mutually_exclusive"]
    ordering_fields = ["name"]


class TagViewSet(GovernedViewSet):
    queryset = Tag.objects.select_related("category")
    serializer_class = TagSerializer
    filterset_fields = ["category"]
    ordering_fields = ["name"]


class ClassificationViewSet(
    mixins.RetrieveModelMixin, mixins.ListModelMixin, GovernedGenericViewSet
):
    """Classifier suggestions; a steward accepts (the field gets the tag) or rejects them."""

    queryset = Classification.objects.select_related(
        "field__table", "tag__category", "decided_by"
    ).order_by("-created_at", "id")
    serializer_class = ClassificationDetailSerializer
    filterset_fields = ["status", "rule", "field", "field__table", "field__table__source"]
    action_permissions = {"accept": "change", "reject": "change"}

    def _decide(self, status_value):
        classification = self.get_object()
        services.classification_decide(
            [classification], status=status_value, user=self.request.user
        )
        return Response(self.get_serializer(classification).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        return self._decide(Classification.Status.ACCEPTED)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._decide(Classification.Status.REJECTED)


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=200)
    source = serializers.IntegerField(required=False)
    kind = serializers.ChoiceField(choices=Table.Kind.choices, required=False)
    tag = serializers.CharField(required=False, max_length=201)
    classification = serializers.CharField(required=False, max_length=201)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)


class SearchResultSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["table", "field"])
    id = serializers.IntegerField()
    name = serializers.CharField()
    fqn = serializers.CharField()
    table_id = serializers.IntegerField()
    description = serializers.CharField()
    score = serializers.FloatField()


@extend_schema_serializer(many=False)  # one answer with a count, not a page of results
class SearchResultsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = SearchResultSerializer(many=True)


class SearchViewSet(GovernedGenericViewSet):
    """GET /api/v1/catalog/search?q=: tables and fields, ranked, only what you may see."""

    queryset = Table.objects.all()
    serializer_class = SearchQuerySerializer
    pagination_class = None  # `limit` bounds the answer
    filter_backends = []

    @extend_schema(parameters=[SearchQuerySerializer], responses=SearchResultsSerializer)
    def list(self, request):
        params = SearchQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        results = selectors.search(request.user, **params.validated_data)
        return Response({"count": len(results), "results": results})
