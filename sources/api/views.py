from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from governance.api.mixins import AccessControlMixin, VersionHistoryMixin
from governance.api.viewsets import GovernedReadOnlyViewSet, GovernedViewSet

from .. import services
from ..filtersets import ConnectionTestFilterSet, DataSourceFilterSet
from ..models import ConnectionTest, DataSource
from .serializers import (
    ConnectionTestResultSerializer,
    ConnectionTestSerializer,
    DataSourceSerializer,
    for_reading,
)


class DataSourceViewSet(VersionHistoryMixin, AccessControlMixin, GovernedViewSet):
    queryset = DataSource.objects.select_related("owner")
    serializer_class = DataSourceSerializer
    filterset_class = DataSourceFilterSet
    ordering_fields = ["name", "kind", "environment", "created_at", "updated_at"]
    action_permissions = {**GovernedViewSet.action_permissions, "test": "change"}

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action in ("list", "retrieve"):
            return for_reading(queryset)
        return queryset

    @extend_schema(
        request=DataSourceSerializer(partial=True),
        responses=ConnectionTestResultSerializer,
        description="Test the stored settings, or unsaved changes to them sent in the body "
        '(a password of "******" keeps the stored one while kind, host, port, database, '
        "username and TLS options are unchanged; otherwise send it again). Nothing is saved.",
    )
    @action(detail=True, methods=["post"], throttle_scope="connection-test")
    def test(self, request, pk=None):
        source = self.get_object()
        candidate = None
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["expected a JSON object of settings"]})
        if request.data:
            serializer = self.get_serializer(source, data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            candidate = serializer.candidate
        result = services.datasource_test_connection(
            source=source, user=request.user, candidate=candidate
        )
        return Response(asdict(result))


class ConnectionTestViewSet(GovernedReadOnlyViewSet):
    queryset = ConnectionTest.objects.select_related("source", "user")
    serializer_class = ConnectionTestSerializer
    filterset_class = ConnectionTestFilterSet
    ordering_fields = ["created_at", "latency_ms"]
