import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from rest_framework import serializers

from governance.api.fields import JSONField
from governance.api.serializers import ModelSerializer, OwnerField
from governance.crypto import MASK

from ..models import ConnectionTest, DataSource


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

    represented = ("password", "options")

    def represent(self, name, instance):
        if name == "password":
            return MASK if password_is_set(instance) else ""
        if name == "options":
            return instance.masked_options()
        return super().represent(name, instance)

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
