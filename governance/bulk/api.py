"""Bulk import and export of the bundle (the catalog and its lineage):

POST /api/v1/bulk/import   multipart: file, format (optional), mode create|upsert, dry_run
GET  /api/v1/bulk/imports/<key>/errors?page=N   every error of a refused import, paged
GET  /api/v1/bulk/export   ?format=json|yaml|csv|xlsx&source=&schema=&tag=&updated_since=
GET  /api/v1/bulk/schema   the JSON Schema of the JSON/YAML document
"""

from datetime import UTC

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import accesslog
from governance.api.parsers import FormParser, MultiPartParser
from governance.api.schema import VALIDATION_ERROR
from governance.api.serializers import JobRunSerializer
from governance.models import AccessLogEntry

from . import exporter, formats, importer
from .schema import document_schema


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=formats.FORMATS, required=False)
    mode = serializers.ChoiceField(choices=importer.MODES, default=importer.CREATE)
    dry_run = serializers.BooleanField(default=False)


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=formats.FORMATS, default="json")
    source = serializers.CharField(required=False, max_length=200)
    schema = serializers.CharField(required=False, max_length=255)
    tag = serializers.CharField(required=False, max_length=201)
    updated_since = serializers.CharField(required=False, max_length=40)

    def validate_updated_since(self, value):
        try:
            moment = parse_datetime(value) or (
                parse_datetime(f"{value}T00:00:00") if parse_date(value) else None
            )
        except ValueError:
            moment = None
        if moment is None:
            raise serializers.ValidationError("expected an ISO 8601 date or date-time")
        return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


_counts = inline_serializer(
    "BulkImportCounts",
    {
        "format": serializers.CharField(),
        "mode": serializers.CharField(),
        "dry_run": serializers.BooleanField(),
        "counts": serializers.DictField(),
        "errors": serializers.ListField(child=serializers.DictField()),
        "error_count": serializers.IntegerField(),
        "errors_url": serializers.CharField(required=False),
        "errors_next": serializers.CharField(required=False),
    },
)
_error_page = inline_serializer(
    "BulkImportErrorPage",
    {
        "count": serializers.IntegerField(),
        "next": serializers.CharField(allow_null=True),
        "previous": serializers.CharField(allow_null=True),
        "results": serializers.ListField(child=serializers.DictField()),
    },
)


_rejected = inline_serializer(
    "BulkImportRejected",
    {
        "detail": serializers.CharField(),
        "errors": serializers.ListField(child=serializers.DictField()),
        "error_count": serializers.IntegerField(),
        "objects": serializers.ListField(child=serializers.CharField(), required=False),
    },
)
_invalid = OpenApiResponse(
    {"anyOf": [{"$ref": "#/components/schemas/BulkImportRejected"}, VALIDATION_ERROR]},
    description="The file is refused (every error with its row or JSON pointer), or a "
    "form field is invalid (each field with its messages).",
)


class IgnoreFormatParameter(DefaultContentNegotiation):
    """`format` names the file format here, not a renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class BulkImportView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": ImportRequestSerializer},
        responses={200: _counts, 202: JobRunSerializer, 400: _invalid, 403: _rejected},
    )
    def post(self, request):
        """Import a catalog file: counts, or every error with its location; large files
        become a job run (202)."""
        body = ImportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        options = body.validated_data
        try:
            outcome, value = importer.bulk_import_submit(
                upload=options["file"],
                user=request.user,
                format=options.get("format"),
                mode=options["mode"],
                dry_run=options["dry_run"],
            )
        except importer.ImportRejected as exc:
            if exc.status == status.HTTP_403_FORBIDDEN:
                accesslog.record(
                    AccessLogEntry.Action.PERMISSION_DENIED,
                    detail={"method": "POST", "path": request.path, "objects": exc.objects[:50]},
                )
            return Response(exc.as_dict(), status=exc.status)
        if outcome == "job":
            return Response(JobRunSerializer(value).data, status=status.HTTP_202_ACCEPTED)
        return Response(value)


class BulkImportErrorsView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("page", int, required=False)],
        responses={200: _error_page},
    )
    def get(self, request, key):
        """A page of every error of a refused import (for whoever ran it), as the import's
        answer links to it: `errors_url` and `errors_next`."""
        page = importer.error_page(request.user, key, request.query_params.get("page", "1"))
        if page is None:
            raise exceptions.NotFound()
        number = page.number
        return Response(
            {
                "count": page.error_count,
                "next": importer.errors_url(key, number + 1) if number < page.page_count else None,
                "previous": importer.errors_url(key, number - 1) if number > 1 else None,
                "results": page.errors,
            }
        )


class BulkExportView(APIView):
    content_negotiation_class = IgnoreFormatParameter

    @extend_schema(
        parameters=[ExportQuerySerializer],
        responses={
            (200, formats.CONTENT_TYPES[fmt].split(";")[0]): kind
            for fmt, kind in zip(
                formats.FORMATS,
                (OpenApiTypes.OBJECT, OpenApiTypes.STR, OpenApiTypes.STR, OpenApiTypes.BINARY),
                strict=True,
            )
        },
    )
    def get(self, request):
        """The catalog the user may view, filtered, streamed in the chosen format."""
        query = ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        options = dict(query.validated_data)
        fmt = options.pop("format")
        try:
            export = exporter.bulk_export(
                user=request.user, format=fmt, filters=options, request=request._request
            )
        except exporter.ExportRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        response = StreamingHttpResponse(export.chunks, content_type=export.content_type)
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        response["X-Exported-Tables"] = str(export.tables)
        return response


class BulkSchemaView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("format", str, required=False, exclude=True)],
        responses={200: dict},
    )
    def get(self, request):
        """The JSON Schema of the JSON and YAML catalog document."""
        return Response(document_schema())
