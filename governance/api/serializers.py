from rest_framework import serializers

from ..models import AccessLogEntry, ChangeLogEntry, JobRun


class GovernedModelSerializer(serializers.ModelSerializer):
    """Related objects chosen by id (a table's source) come from what the requesting user may
    see, as GovernedFilterSet does for filters: a hidden parent is "Invalid pk" exactly like
    a missing one, and it is refused before anything under it (uniqueness) is checked."""

    def get_fields(self):
        fields = super().get_fields()
        user = getattr(self.context.get("request"), "user", None)
        for field in fields.values():
            field = getattr(field, "child_relation", field)
            queryset = getattr(field, "queryset", None)
            if hasattr(queryset, "restrict"):
                field.queryset = queryset.restrict(user, "view")
        return fields


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
