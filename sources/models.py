from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from governance.crypto import MASK, EncryptedJSONField, EncryptedTextField
from governance.models import BaseModel
from governance.permissions import RestrictedQuerySet

from .connectors import KINDS, connection_target, validate_options
from .connectors.base import TARGET_FIELDS, ConnectionSpec
from .connectors.metadata import ScanRules


def cron_fields(expression):
    """Split a five-field cron expression, checking each field with celery's own parser."""
    from celery.schedules import crontab_parser

    parts = expression.split()
    if len(parts) != 5:
        raise ValueError("a cron expression has five fields: minute hour day month weekday")
    limits = ((60, 0), (24, 0), (31, 1), (12, 1), (7, 0))
    for part, (size, start) in zip(parts, limits, strict=True):
        try:
            crontab_parser(size, start).parse(part)
        except Exception as exc:
            raise ValueError(f"invalid cron field {part!r}: {exc}") from exc
    return parts


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
    # Scan rules: applied before anything is read from the source.
    scan_include_schemas = models.JSONField(
        default=list,
        blank=True,
        help_text='Schema name patterns to scan, e.g. ["sales*"]; '
        "empty scans every non-system schema.",
    )
    scan_exclude_schemas = models.JSONField(default=list, blank=True)
    scan_include_tables = models.JSONField(
        default=list, blank=True, help_text='Patterns matched against "table" and "schema.table".'
    )
    scan_exclude_tables = models.JSONField(default=list, blank=True)
    scan_include_views = models.BooleanField(default=True)
    scan_sample_values = models.BooleanField(
        default=False,
        help_text="Read sample values to classify columns (values are never stored).",
    )
    scan_sample_size = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(10000)],
        help_text="Values per column sampled for classification.",
    )
    scan_document_sample = models.PositiveIntegerField(
        default=1000,
        validators=[MinValueValidator(1), MaxValueValidator(100000)],
        help_text="MongoDB: documents sampled per collection to infer fields.",
    )
    scan_schedule = models.CharField(
        max_length=100,
        blank=True,
        help_text='A cron expression ("minute hour day month weekday") for scheduled scans.',
    )
    last_scan_at = models.DateTimeField(null=True, blank=True)
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_error_kind = models.CharField(max_length=20, blank=True)
    last_test_error = models.TextField(blank=True)

    changelog_exclude = (
        "last_test_at",
        "last_test_ok",
        "last_test_error_kind",
        "last_test_error",
        "last_scan_at",
    )

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
        for name in (
            "scan_include_schemas",
            "scan_exclude_schemas",
            "scan_include_tables",
            "scan_exclude_tables",
        ):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                errors[name] = "a list of name patterns (strings) is expected"
        if self.scan_schedule:
            try:
                cron_fields(self.scan_schedule)
            except ValueError as exc:
                errors["scan_schedule"] = str(exc)
        if errors:
            raise ValidationError(errors)

    def all_options(self):
        return {**(self.options or {}), **(self.secret_options or {})}

    def masked_options(self):
        return {**(self.options or {}), **dict.fromkeys(self.secret_options or {}, MASK)}

    def set_secrets(self, stored, *, password=None, options=None):
        """Put the password and options a form or request sent on this source, whose other
        fields are already set; `stored` is the saved source (None for a new one).

        A password of None (not sent) or MASK keeps the stored one, an option sent as MASK
        keeps its stored value, and options=None keeps them all; a key left out is removed.
        Options not on the kind's public allowlist are secrets. A kept secret must still go
        where it was stored for: once any field of secret_target() differs from `stored`,
        each kept secret must be sent again, and ValidationError names it."""
        errors, kept = {}, []  # kept: the stored secret options reused
        keep_password = password is None or password == MASK
        if password == MASK and not (stored and stored.password):
            errors["password"] = "no stored password to keep"  # noqa: S105 - a message
        self.password = (stored.password if stored else "") if keep_password else password
        kept_password = keep_password and bool(self.password)
        if options is None:
            options = stored.masked_options() if stored else {}
        stored_options = stored.all_options() if stored else {}
        public_keys = KINDS[self.kind].public_options if self.kind in KINDS else frozenset()
        public, secret = {}, {}
        for key, value in options.items():
            if value == MASK:
                if key not in stored_options:
                    errors["options"] = f"{key}: no stored value to keep"
                    continue
                value = stored_options[key]
                if key in stored.secret_options:
                    kept.append(key)
            (public if key in public_keys else secret)[key] = value
        self.options, self.secret_options = public, secret
        moved = self.target_changes(stored) if (kept_password or kept) and not errors else []
        if moved:
            why = f"the connection target changed ({', '.join(moved)})"
            if kept_password:
                errors["password"] = f"{why}: send the password again (an empty one removes it)"
            if kept:
                errors["options"] = f"{', '.join(kept)}: {why}: send the value again"
        if errors:
            raise ValidationError(errors)

    def secret_target(self):
        """Where and how this source's password and secret options are sent: its kind,
        address fields and the options that change them (Connector.target)."""
        fields = {name: getattr(self, name) for name in TARGET_FIELDS}
        return connection_target(ConnectionSpec(**fields, options=self.all_options()))

    def target_changes(self, other):
        """The names of the secret_target() fields in which this source differs from `other`."""
        mine, theirs = self.secret_target(), other.secret_target()
        return [key for key in {**mine, **theirs} if mine.get(key) != theirs.get(key)]

    def scan_rules(self):
        include = tuple(self.scan_include_schemas)
        if not include and self.kind == self.Kind.MYSQL and self.database:
            include = (self.database,)  # in MySQL a database is a schema: scan the one named
        return ScanRules(
            include_schemas=include,
            exclude_schemas=tuple(self.scan_exclude_schemas),
            include_tables=tuple(self.scan_include_tables),
            exclude_tables=tuple(self.scan_exclude_tables),
            include_views=self.scan_include_views,
            sample_size=self.scan_document_sample,
        )

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
