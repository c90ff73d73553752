"""POST /api/v1/lineage/sql: the lineage of SQL statements, resolved against the catalog the
user may see, and stored as inferred, pending edges with "apply": true."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from sources.models import DataSource

from .. import inference
from ..sql import DIALECTS, SOURCE_DIALECTS, SqlError


class SqlLineageRequestSerializer(serializers.Serializer):
    sql = serializers.CharField(max_length=1_000_000, trim_whitespace=False)
    dialect = serializers.CharField(
        max_length=50,
        required=False,
        help_text="A dialect sqlglot knows, or ansi; by default the source's own.",
    )
    default_schema = serializers.CharField(max_length=255, required=False, allow_blank=True)
    source_id = serializers.IntegerField(required=False, allow_null=True)
    apply = serializers.BooleanField(required=False, default=False)

    def validate_dialect(self, value):
        if value.strip().lower() not in DIALECTS:
            raise serializers.ValidationError(
                f"unknown dialect {value!r}; allowed: {', '.join(DIALECTS)}"
            )
        return value.strip().lower()


class ColumnLineageSerializer(serializers.Serializer):
    target = serializers.CharField()
    sources = serializers.ListField(child=serializers.CharField())
    transformation = serializers.CharField()


class SqlTableSerializer(serializers.Serializer):
    name = serializers.CharField()
    table_id = serializers.IntegerField(allow_null=True)


class SqlLineageSerializer(serializers.Serializer):
    sources = serializers.ListField(child=serializers.CharField())
    targets = serializers.ListField(child=serializers.CharField())
    columns = ColumnLineageSerializer(many=True)
    unresolved = serializers.ListField(child=serializers.CharField())
    tables = SqlTableSerializer(many=True)
    skipped = serializers.ListField(child=serializers.CharField())
    statements = serializers.IntegerField()
    edges = serializers.DictField(child=serializers.IntegerField(), required=False)


class SqlLineageView(APIView):
    """Parse SQL (one or more statements) and answer the tables it reads and writes, where
    each written column comes from, and the catalog ids of the names that resolve."""

    throttle_scope = "lineage-sql"

    @extend_schema(request=SqlLineageRequestSerializer, responses=SqlLineageSerializer)
    def post(self, request):
        params = SqlLineageRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        source = None
        if data.get("source_id") is not None:
            source = get_object_or_404(
                DataSource.objects.restrict(request.user, "view"), pk=data["source_id"]
            )
        dialect = data.get("dialect") or SOURCE_DIALECTS.get(getattr(source, "kind", None))
        if not dialect:
            allowed = ", ".join(DIALECTS)
            message = f"required unless source_id names a SQL source; one of {allowed}"
            raise ValidationError({"dialect": [message]})
        try:
            answer = inference.infer(
                data["sql"],
                dialect,
                default_schema=data.get("default_schema", ""),
                source=source,
                apply=data["apply"],
                user=request.user,
            )
        except SqlError as exc:
            return Response(
                {"sql": [exc.message], "line": exc.line, "col": exc.col},
                status=status.HTTP_400_BAD_REQUEST,
            )
        except inference.ApplyDenied as exc:
            raise PermissionDenied(
                f"You may not change the tables this SQL writes: {', '.join(exc.tables)}."
            ) from exc
        return Response(answer)
