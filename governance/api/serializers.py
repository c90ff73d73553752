from django.db import models
from rest_framework import serializers

from ..models import AccessLogEntry, ChangeLogEntry, JobRun
from .fields import BooleanField, CharField, JSONField


class JobRunSerializer(serializers.ModelSerializer):
    duration = serializers.FloatField(read_only=True, allow_null=True)
    target_type = serializers.SlugRelatedField(slug_field="model", read_only=True, allow_null=True)
    user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = JobRun
        fields = [
            "id",
            "name",
            "task",
            "status",
            "progress",
            "progress_message",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "duration",
            "user",
            "target_type",
            "target_id",
            "target_repr",
            "result",
            "error",
        ]
        read_only_fields = fields


class ChangeLogEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = ChangeLogEntry
        fields = [
            "id",
            "version",
            "time",
            "action",
            "user_name",
            "request_id",
            "object_repr",
            "changed",
            "before",
            "after",
        ]
        read_only_fields = fields


class AccessLogEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AccessLogEntry
        fields = ["id", "time", "action", "user_name", "ip_address", "request_id", "detail"]
        read_only_fields = fields


class ModelSerializer(serializers.ModelSerializer):
    """The base of writable model serializers: input is taken as the JSON types the schema
    states (see governance.api.fields)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.JSONField: JSONField,
        models.CharField: CharField,
        models.TextField: CharField,
        models.SlugField: CharField,
        models.BooleanField: BooleanField,
    }
