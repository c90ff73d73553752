from rest_framework import serializers

from ..models import AccessLogEntry, ChangeLogEntry, JobRun
from ..permissions import assignable_users


class OwnerField(serializers.SlugRelatedField):
    """An object's owner, by username: an account that may be named (assignable_users), or
    the one the object already has; any other name is refused as a missing one is."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="username", required=False, allow_null=True, **kwargs)

    def get_queryset(self):
        users = assignable_users()
        owner_id = getattr(self.root.instance, "owner_id", None)
        if owner_id is None:
            return users
        return users | users.model._default_manager.filter(pk=owner_id)


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
