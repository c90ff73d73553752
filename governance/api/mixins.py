from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from .. import accesslog, changelog
from ..services import holders
from .serializers import AccessLogEntrySerializer, ChangeLogEntrySerializer


class VersionHistoryMixin:
    """GET {id}/version-history and POST {id}/version-history/{version}/restore."""

    @extend_schema(responses=ChangeLogEntrySerializer(many=True))
    @action(detail=True, methods=["get"], url_path="version-history")
    def version_history(self, request, pk=None):
        page = self.paginate_queryset(changelog.history(self.get_object()))
        return self.get_paginated_response(ChangeLogEntrySerializer(page, many=True).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path=r"version-history/(?P<version>[0-9]+)/restore")
    def restore_version(self, request, pk=None, version=None):
        obj = self.get_object()
        try:
            changelog.restore(obj, int(version))
        except changelog.VersionNotRestorable as exc:
            raise NotFound(str(exc)) from exc
        self.recheck(obj, "change")
        return Response(self.get_serializer(obj).data)


class AccessControlSerializer(serializers.Serializer):
    users = serializers.ListField(child=serializers.DictField())
    groups = serializers.ListField(child=serializers.DictField())
    global_groups = serializers.ListField(child=serializers.DictField())
    recent_access = AccessLogEntrySerializer(many=True)


class AccessControlMixin:
    """GET {id}/access-control: who holds which permission, and recent access."""

    @extend_schema(responses=AccessControlSerializer)
    @action(detail=True, methods=["get"], url_path="access-control")
    def access_control(self, request, pk=None):
        obj = self.get_object()
        body = holders(obj)
        body["recent_access"] = AccessLogEntrySerializer(
            accesslog.for_object(obj)[:50], many=True
        ).data
        return Response(body)
