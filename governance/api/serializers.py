from rest_framework import serializers

from ..models import AccessLogEntry, ChangeLogEntry, JobRun


class JobRunSerializer(serializers.ModelSerializer):
    duration = serializers.FloatField(read_only=True)
    target_type = serializers.SlugRelatedField(slug_field="model", read_only=True)
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

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
            "heartbeat_at",
            "duration",
            "user",
            "target_type",
            "target_id",
            "target_repr",
            "result",
            "error",
            "retried_as",
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
