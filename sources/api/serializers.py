import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.utils import timezone
from rest_framework import serializers

from governance.api.fields import JSONField
from governance.api.serializers import ModelSerializer, OwnerField
from governance.crypto import MASK

from ..models import ConnectionTest, DataSource

# Fields whose to_representation returns a value of this type unchanged.
UNCHANGED = {
    serializers.CharField: str,
    serializers.ChoiceField: str,
    serializers.IntegerField: int,
    serializers.BooleanField: bool,
}


def for_reading(queryset):
    """The queryset the read endpoints serialize: the password is not loaded (nor decrypted)
    since a response shows only whether one is set, and the owner's username comes with the
    row instead of a whole user object."""
    return (
        queryset.select_related(None)
        .defer("password")
        .annotate(
            owner_username=F("owner__username"),
            password_is_set=ExpressionWrapper(~Q(password=""), output_field=BooleanField()),
        )
    )


class DataSourceSerializer(ModelSerializer):
    """Secrets are write-only: a set password reads back as "******", and "******" sent
    back (password or an option value) keeps what is stored, as long as the connection
    target stays the same (DataSource.set_secrets)."""

    password = serializers.CharField(
        required=False, allow_blank=True, max_length=1024, trim_whitespace=False
    )
    options = JSONField(required=False)
    owner = OwnerField()

    class Meta:
        model = DataSource
        fields = [
            "id",
            "name",
            "kind",
            "host",
            "port",
            "database",
            "username",
            "password",
            "options",
            "environment",
            "owner",
            "description",
            "is_active",
            "scan_include_schemas",
            "scan_exclude_schemas",
            "scan_include_tables",
            "scan_exclude_tables",
            "scan_include_views",
            "scan_sample_values",
            "scan_sample_size",
            "scan_document_sample",
            "scan_schedule",
            "last_scan_at",
            "last_test_at",
            "last_test_ok",
            "last_test_error_kind",
            "last_test_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "last_scan_at",
            "last_test_at",
            "last_test_ok",
            "last_test_error_kind",
            "last_test_error",
            "created_at",
            "updated_at",
        ]

    def to_representation(self, instance):
        """The same output as ModelSerializer.to_representation, without its per-row
        overhead: the fields are looked up once per process, and a value that its field
        would return unchanged (a str for a CharField, say) skips the field."""
        data = {}
        for name, attname, unchanged_type, represent in self.read_plan():
            if name == "password":
                data[name] = MASK if password_is_set(instance) else ""
            elif name == "options":
                data[name] = instance.masked_options()
            elif name == "owner":
                data[name] = owner_username(instance)
            else:
                value = getattr(instance, attname)
                if value is None or represent is None or type(value) is unchanged_type:
                    data[name] = value
                else:
                    data[name] = represent(value)
        return data

    @classmethod
    def read_plan(cls):
        """Per readable field: name, model attribute, the type of value the field returns
        as it is, and field.to_representation (None when it returns every value as is)."""
        plan = cls.__dict__.get("_read_plan")
        if plan is None:
            plan = []
            for name, field in cls().fields.items():
                if field.write_only:
                    continue
                if len(field.source_attrs) != 1:
                    raise TypeError(f"{cls.__name__}.{name}: a dotted source needs its own code")
                as_is = isinstance(field, serializers.JSONField) and not field.binary
                if isinstance(field, serializers.DateTimeField):
                    # Steward never activates a per-request time zone, so times are written
                    # in TIME_ZONE without looking up the current zone for every value.
                    field.timezone = timezone.get_default_timezone()
                represent = None if as_is else field.to_representation
                plan.append((name, field.source_attrs[0], UNCHANGED.get(type(field)), represent))
            cls._read_plan = plan
        return plan

    def validate_options(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("options must be a JSON object")
        return value

    def validate(self, attrs):
        """Build the would-be source (unsaved) and run the model's own validation on it."""
        candidate = copy.copy(self.instance) if self.instance else DataSource()
        options = attrs.pop("options", None)
        password = attrs.pop("password", None)
        for key, value in attrs.items():
            setattr(candidate, key, value)
        try:
            candidate.set_secrets(self.instance, password=password, options=options)
            candidate.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        self.candidate = candidate
        return attrs

    def create(self, validated_data):
        self.candidate.save()
        return self.candidate

    def update(self, instance, validated_data):
        self.candidate.save()
        return self.candidate


def password_is_set(source):
    """From the for_reading() annotation when there is one: the stored token is not empty."""
    value = getattr(source, "password_is_set", None)
    return bool(source.password) if value is None else bool(value)


def owner_username(source):
    if "owner_username" in source.__dict__:
        return source.owner_username
    return source.owner.username if source.owner_id is not None else None


class ConnectionTestResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    latency_ms = serializers.FloatField()
    server_version = serializers.CharField()
    error = serializers.CharField()
    error_kind = serializers.CharField()


class ConnectionTestSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = ConnectionTest
        fields = [
            "id",
            "source",
            "operation",
            "user",
            "ok",
            "latency_ms",
            "server_version",
            "error_kind",
            "error",
            "created_at",
        ]
        read_only_fields = fields
