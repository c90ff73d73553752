import copy

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from governance.crypto import MASK

from ..models import ConnectionTest, DataSource

CONNECTION_FIELDS = ("kind", "host", "port", "database", "username")


class DataSourceSerializer(serializers.ModelSerializer):
    """Secrets are write-only: a set password reads back as "******", and "******" sent
    back (password or an option value) keeps what is stored."""

    password = serializers.CharField(
        required=False, allow_blank=True, max_length=1024, trim_whitespace=False
    )
    options = serializers.JSONField(required=False)
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        allow_null=True,
    )

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
        data = super().to_representation(instance)
        data["password"] = MASK if instance.password else ""
        data["options"] = instance.masked_options()
        return data

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
        if password is not None and password != MASK:
            candidate.password = password
        if password == MASK and not (self.instance and self.instance.password):
            raise serializers.ValidationError({"password": "no stored password to keep"})
        try:
            candidate.set_options(options if options is not None else candidate.masked_options())
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


class ConnectionTestResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    latency_ms = serializers.FloatField()
    server_version = serializers.CharField()
    error = serializers.CharField()
    error_kind = serializers.CharField()


class ConnectionTestSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

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
