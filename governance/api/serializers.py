from django.db import models
from rest_framework import serializers

from ..models import AccessLogEntry, ApiToken, ChangeLogEntry, JobRun
from ..permissions import assignable_users
from .fields import BooleanField, CharField, JSONField, SlugRelatedField


class OwnerField(SlugRelatedField):
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


class ModelSerializer(serializers.ModelSerializer):
    """The base of writable model serializers: input is taken as the JSON types the schema
    states (see governance.api.fields), and related objects chosen by id (a table's source)
    come from what the requesting user may see, as GovernedFilterSet does for filters: a
    hidden parent is "Invalid pk" exactly like a missing one, and it is refused before
    anything under it (uniqueness) is checked. Without a request in the context nothing is
    offered."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.JSONField: JSONField,
        models.CharField: CharField,
        models.TextField: CharField,
        models.SlugField: CharField,
        models.BooleanField: BooleanField,
    }

    def get_fields(self):
        fields = super().get_fields()
        user = getattr(self.context.get("request"), "user", None)
        for field in fields.values():
            field = getattr(field, "child_relation", field)
            queryset = getattr(field, "queryset", None)
            if hasattr(queryset, "restrict"):
                field.queryset = queryset.restrict(user, "view")
        return fields


class ApiTokenSerializer(ModelSerializer):
    """A token as anyone may see it: never the key, never its digest."""

    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", *ApiToken.SHOWN_FIELDS]
        read_only_fields = ["id", "prefix", "user", "created_at", "expires_at", "last_used_at"]


class NewApiTokenSerializer(ApiTokenSerializer):
    """The answer that creates a token: the only one that carries its key."""

    token = serializers.CharField(read_only=True, help_text="The key; it is not shown again.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class SignInSerializer(serializers.Serializer):
    username = CharField(max_length=150)
    password = CharField(max_length=4096, trim_whitespace=False, write_only=True)
    name = CharField(max_length=100, default="api")
