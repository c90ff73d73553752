"""POST /api/v1/lineage/openlineage: the endpoint OpenLineage clients send events to.

Configure a client's HTTP transport with url = Steward's root, endpoint =
"api/v1/lineage/openlineage" and an API token as api_key (sent as `Authorization: Bearer`).
"""

import json
import zlib

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api.parsers import find_unstorable, message

from .. import openlineage


class BodyTooLarge(Exception):
    pass


def body_limit():
    """The largest body, as sent and once inflated (the request's Content-Length is checked
    against it before the body is read, by governance.uploads)."""
    return settings.OPENLINEAGE_MAX_BYTES


def _decompress(body, encoding):
    """A gzip body (the clients' `compression: gzip`), never inflated past the size limit."""
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise exceptions.UnsupportedMediaType(encoding, f"unsupported Content-Encoding {encoding}")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, body_limit() + 1)
    except zlib.error as exc:
        raise exceptions.ParseError(f"the gzip body cannot be read: {exc}") from exc
    if len(data) > body_limit() or inflater.unconsumed_tail:
        raise BodyTooLarge
    return data


class OpenLineageView(APIView):
    """Receive OpenLineage events (one, or a JSON list): jobs, runs, tables, fields and
    pending lineage edges, written in one transaction."""

    # The body is read here so that its size limit and its JSON errors are ours to report.
    parser_classes = []

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        # Read here rather than through request.body, which holds to Django's form limit.
        body = request.read(body_limit() + 1)
        try:
            if len(body) > body_limit():
                raise BodyTooLarge
            body = _decompress(body, request.headers.get("Content-Encoding", "").lower())
        except BodyTooLarge:
            return Response(
                {"detail": f"the body is larger than {body_limit()} bytes", "limit": body_limit()},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return Response({"detail": f"the body is not JSON: {exc}", "pointer": ""}, status=400)
        unstorable = find_unstorable(payload)  # this view is its own parser
        if unstorable:
            pointer, text = unstorable
            return Response({"detail": message(text), "pointer": pointer}, status=400)
        try:
            events = openlineage.parse_events(payload)
            summary = openlineage.ingest(events, user=request.user)
        except openlineage.EventError as exc:
            return Response({"detail": str(exc), "pointer": exc.pointer}, status=400)
        except openlineage.Denied as exc:
            raise exceptions.PermissionDenied(
                {"detail": exc.message, "datasets": exc.datasets}
            ) from exc
        return Response(summary, status=status.HTTP_201_CREATED)
