from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from governance.crypto import MASK, EncryptedJSONField, EncryptedTextField
from governance.models import BaseModel
from governance.permissions import RestrictedQuerySet

from .connectors import KINDS, validate_options
from .connectors.base import ConnectionSpec


class DataSource(BaseModel):
    """A database Steward catalogs: where it is, how to log in (encrypted), who owns it."""

    class Kind(models.TextChoices):
        POSTGRESQL = "postgresql", "PostgreSQL"
        MYSQL = "mysql", "MySQL / MariaDB"
        ORACLE = "oracle", "Oracle"
        SQLITE = "sqlite", "SQLite"
        MONGODB = "mongodb", "MongoDB"
        ELASTICSEARCH = "elasticsearch", "Elasticsearch"

    class Environment(models.TextChoices):
        PRODUCTION = "prod", "Production"
        STAGING = "staging", "Staging"
        DEVELOPMENT = "dev", "Development"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    database = models.CharField(
        max_length=255,
        blank=True,
        help_text="Database, Oracle service name, SQLite file, MongoDB database or "
        "Elasticsearch index pattern.",
    )
    username = models.CharField(max_length=150, blank=True)
    password = EncryptedTextField(blank=True)
    options = models.JSONField(
        default=dict, blank=True, help_text="Driver options that are safe to show."
    )
    secret_options = EncryptedJSONField(default=dict, blank=True)
    environment = models.CharField(
        max_length=10, choices=Environment.choices, default=Environment.DEVELOPMENT
    )
    is_active = models.BooleanField(default=True)
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_error_kind = models.CharField(max_length=20, blank=True)
    last_test_error = models.TextField(blank=True)

    changelog_exclude = ("last_test_at", "last_test_ok", "last_test_error_kind", "last_test_error")

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["kind"]), models.Index(fields=["environment"])]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        if self.kind not in KINDS:
            errors["kind"] = f"unknown kind {self.kind!r}"
        elif self.kind == self.Kind.SQLITE:
            if not self.database:
                errors["database"] = "an SQLite source needs the database file name"
        elif not self.host:
            errors["host"] = "a host is required for this kind of source"
        if not errors:
            try:
                validate_options(self.kind, self.all_options())
            except ValueError as exc:
                errors["options"] = str(exc)
        if errors:
            raise ValidationError(errors)

    def all_options(self):
        return {**(self.options or {}), **(self.secret_options or {})}

    def masked_options(self):
        return {**(self.options or {}), **dict.fromkeys(self.secret_options or {}, MASK)}

    def set_options(self, options):
        """Split options into the public allowlist and secrets; a masked value keeps the
        stored secret, a missing key removes it."""
        public_keys = KINDS[self.kind].public_options if self.kind in KINDS else frozenset()
        stored = self.all_options()
        public, secret = {}, {}
        for key, value in (options or {}).items():
            if value == MASK:
                if key not in stored:
                    raise ValidationError({"options": f"{key}: no stored value to keep"})
                value = stored[key]
            (public if key in public_keys else secret)[key] = value
        self.options, self.secret_options = public, secret

    def connection_spec(self, **overrides):
        values = {
            "kind": self.kind,
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "username": self.username,
            "password": self.password,
            "options": validate_options(self.kind, self.all_options()),
        }
        values.update(overrides)
        return ConnectionSpec(**values)


class ConnectionTest(models.Model):
    """The log of every connection attempt made for a source: who, when, the outcome."""

    source = models.ForeignKey(
        DataSource, on_delete=models.CASCADE, related_name="connection_tests"
    )
    operation = models.CharField(max_length=30, default="test")
    user = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ok = models.BooleanField()
    latency_ms = models.FloatField(null=True, blank=True)
    server_version = models.CharField(max_length=200, blank=True)
    error_kind = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = RestrictedQuerySet.as_manager()
    permission_parent = "source"

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.source} {self.operation}: {'ok' if self.ok else self.error_kind}"
