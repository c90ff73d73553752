from django.db import models
from django.utils import timezone
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

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

    def get_attribute(self, instance):
        if "owner_username" in instance.__dict__:  # annotated by a reading queryset
            return instance.owner_username
        return super().get_attribute(instance)

    def to_representation(self, value):
        return value if isinstance(value, str) else super().to_representation(value)


# Fields of these kinds write out a value of the given type as it is (object: any value),
# unless a subclass changes to_representation.
AS_IS = {
    serializers.CharField: str,
    serializers.ChoiceField: str,
    serializers.IntegerField: int,
    serializers.BooleanField: bool,
    serializers.JSONField: object,
    serializers.PrimaryKeyRelatedField: object,  # the related object's id
}


def read_as_is(field, model):
    """(model attribute, value type) when `field` writes out that attribute's value as it
    is, or None when the field must represent it."""
    if len(field.source_attrs) != 1 or getattr(field, "binary", False):
        return None
    source = field.source_attrs[0]
    if isinstance(field, serializers.BigIntegerField):  # it only adds an optional text form
        as_text = getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING)
        return None if as_text else (source, int)
    if isinstance(field, serializers.PrimaryKeyRelatedField):
        if field.pk_field is not None:
            return None
        source = model._meta.get_field(source).attname  # "source" reads "source_id"
    for kind, value_type in AS_IS.items():
        if isinstance(field, kind) and type(field).to_representation is kind.to_representation:
            return source, value_type
    return None


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

    # Readable fields whose value the subclass writes out in represent(), never as it is.
    represented: tuple[str, ...] = ()

    def get_fields(self):
        fields = super().get_fields()
        user = getattr(self.context.get("request"), "user", None)
        for field in fields.values():
            if isinstance(field, serializers.DateTimeField):
                # Steward never activates a per-request time zone, so times are written in
                # TIME_ZONE without looking up the current zone for every value.
                field.timezone = timezone.get_default_timezone()
            field = getattr(field, "child_relation", field)
            queryset = getattr(field, "queryset", None)
            if hasattr(queryset, "restrict"):
                field.queryset = queryset.restrict(user, "view")
        return fields

    def to_representation(self, instance):
        """DRF's output without its per-field overhead on plain values: a value its field
        would write out unchanged (a str for a CharField, say) is taken as it is; every
        other field goes through represent()."""
        data = {}
        for name, attname, value_type in self.read_plan():
            if attname is not None:
                value = getattr(instance, attname)
                if value is None or value_type is object or type(value) is value_type:
                    data[name] = value
                    continue
            try:
                data[name] = self.represent(name, instance)
            except SkipField:
                continue
        return data

    def represent(self, name, instance):
        """One field's value as DRF's to_representation writes it."""
        field = self.fields[name]
        attribute = field.get_attribute(instance)
        is_none = (attribute.pk if isinstance(attribute, PKOnlyObject) else attribute) is None
        return None if is_none else field.to_representation(attribute)

    def read_plan(self):
        """Per readable field, worked out once per class: its name, and the model attribute
        it writes out as it is with that value's type (None, None: through represent())."""
        cls = type(self)
        plan = cls.__dict__.get("_read_plan")
        if plan is None:
            plan = []
            for name, field in self.fields.items():
                if field.write_only:
                    continue
                found = None if name in self.represented else read_as_is(field, cls.Meta.model)
                plan.append((name, *(found or (None, None))))
            cls._read_plan = plan
        return plan


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
