from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Concat

from governance.models import BaseModel
from governance.permissions import RestrictedQuerySet


class TagCategory(BaseModel):
    """A family of tags such as PII, Sensitivity, Domain or Tier."""

    name = models.CharField(max_length=100, unique=True)
    mutually_exclusive = models.BooleanField(
        default=False, help_text="An object may carry at most one tag of this category."
    )

    readable_by_all = True

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "tag categories"

    def __str__(self):
        return self.name


class Tag(BaseModel):
    category = models.ForeignKey(TagCategory, on_delete=models.PROTECT, related_name="tags")
    name = models.CharField(max_length=100)

    readable_by_all = True

    class Meta:
        ordering = ["category__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["category", "name"], name="tag_unique_in_category")
        ]

    def __str__(self):
        return f"{self.category.name}.{self.name}"


def search_text():
    """Name, description and comment in one stored column, which catalog search matches with
    one trigram index (on PostgreSQL) instead of one per column."""
    return models.GeneratedField(
        expression=Concat(
            "name",
            models.Value("\n"),
            "description",
            models.Value("\n"),
            "comment",
            output_field=models.TextField(),
        ),
        output_field=models.TextField(),
        db_persist=True,
    )


class Table(BaseModel):
    """A table, view, materialized view, MongoDB collection or Elasticsearch index; scanned
    from a source, or kept by hand (no source)."""

    class Kind(models.TextChoices):
        TABLE = "table"
        VIEW = "view"
        MATERIALIZED_VIEW = "materialized_view", "materialized view"
        COLLECTION = "collection"
        INDEX = "index"
        EXTERNAL = "external"

    class LegalBasis(models.TextChoices):
        CONSENT = "consent", "Consent (Art. 6(1)(a))"
        CONTRACT = "contract", "Contract (Art. 6(1)(b))"
        LEGAL_OBLIGATION = "legal_obligation", "Legal obligation (Art. 6(1)(c))"
        VITAL_INTERESTS = "vital_interests", "Vital interests (Art. 6(1)(d))"
        PUBLIC_TASK = "public_task", "Public task (Art. 6(1)(e))"
        LEGITIMATE_INTERESTS = "legitimate_interests", "Legitimate interests (Art. 6(1)(f))"

    class Criticality(models.TextChoices):
        TIER_1 = "tier1", "Tier 1 (business critical)"
        TIER_2 = "tier2", "Tier 2"
        TIER_3 = "tier3", "Tier 3"
        TIER_4 = "tier4", "Tier 4 (low)"

    source = models.ForeignKey(
        "sources.DataSource", null=True, blank=True, on_delete=models.CASCADE, related_name="tables"
    )
    schema = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TABLE)
    fqn = models.CharField("fully qualified name", max_length=800, unique=True, editable=False)
    comment = models.TextField(blank=True, help_text="The comment the source keeps.")
    search_text = search_text()
    row_count = models.BigIntegerField(null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    view_definition = models.TextField(blank=True)
    properties = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="tables")
    first_seen = models.DateTimeField(null=True, blank=True)
    removed = models.BooleanField(default=False, db_index=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    # Governance attributes that compliance rules read.
    data_domain = models.CharField(max_length=100, blank=True)
    purpose = models.TextField("purpose of processing", blank=True)
    legal_basis = models.CharField(max_length=30, choices=LegalBasis.choices, blank=True)
    retention_days = models.PositiveIntegerField("retention period (days)", null=True, blank=True)
    residency_region = models.CharField("data residency region", max_length=50, blank=True)
    criticality = models.CharField(max_length=10, choices=Criticality.choices, blank=True)
    pci_scope = models.BooleanField("in scope for payment-card rules", default=False)

    objects = RestrictedQuerySet.as_manager()
    permission_parent = "source"
    # The governance attributes above, as the admin, the API and bulk files list them.
    GOVERNANCE_ATTRS = (
        "data_domain",
        "purpose",
        "legal_basis",
        "retention_days",
        "residency_region",
        "criticality",
        "pci_scope",
    )

    class Meta:
        ordering = ["fqn"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "schema", "name"], name="table_unique_in_source"
            )
        ]
        indexes = [models.Index(fields=["source", "removed"])]

    def __str__(self):
        return self.fqn

    @staticmethod
    def make_fqn(source_name, schema, name):
        return ".".join(part for part in (source_name or "manual", schema, name) if part)

    def save(self, *args, **kwargs):
        self.fqn = self.make_fqn(
            self.source.name if self.source_id else None, self.schema, self.name
        )
        super().save(*args, **kwargs)


class Field(BaseModel):
    """A column, or a dotted path inside documents for MongoDB and Elasticsearch."""

    table = models.ForeignKey(Table, on_delete=models.CASCADE, related_name="fields")
    name = models.CharField(max_length=500)
    position = models.PositiveIntegerField(default=0)
    data_type = models.CharField(max_length=30, blank=True)
    native_type = models.CharField(max_length=200, blank=True)
    nullable = models.BooleanField(default=True)
    default = models.TextField(null=True, blank=True)
    is_primary_key = models.BooleanField(default=False)
    foreign_key = models.CharField(max_length=800, blank=True)
    comment = models.TextField(blank=True, help_text="The comment the source keeps.")
    search_text = search_text()
    presence = models.FloatField(null=True, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="fields")
    removed = models.BooleanField(default=False)

    objects = RestrictedQuerySet.as_manager()
    permission_parent = "table"

    class Meta:
        ordering = ["table", "position", "name"]
        constraints = [models.UniqueConstraint(fields=["table", "name"], name="field_unique")]

    def __str__(self):
        return f"{self.table.fqn}.{self.name}"

    STRUCTURE = ("data_type", "native_type", "nullable", "is_primary_key")

    def structure(self):
        return {key: getattr(self, key) for key in self.STRUCTURE}


class SchemaVersion(models.Model):
    """A table's structure after a scan that changed it, with the diff from the version before."""

    table = models.ForeignKey(Table, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    job = models.ForeignKey(
        "governance.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fields = models.JSONField(default=dict)
    diff = models.JSONField(default=dict)

    objects = RestrictedQuerySet.as_manager()
    permission_parent = "table"

    class Meta:
        ordering = ["table", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["table", "version"], name="schema_version_unique")
        ]

    def __str__(self):
        return f"{self.table} v{self.version}"


class ClassifierRule(BaseModel):
    """A PII rule: column-name pattern, value pattern and validator, and the tag it suggests.
    Built-in rules are synced from code; stewards add their own here."""

    key = models.SlugField(max_length=64, unique=True)
    label = models.CharField(max_length=200)
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="+")
    sensitivity = models.CharField(max_length=20, blank=True)
    name_pattern = models.CharField(max_length=500, blank=True)
    exclude_name_pattern = models.CharField(max_length=500, blank=True)
    value_pattern = models.CharField(max_length=500, blank=True)
    validator = models.CharField(max_length=50, blank=True)
    min_hit_ratio = models.FloatField(default=0.8)
    name_only = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    builtin = models.BooleanField(default=False, editable=False)

    readable_by_all = True

    class Meta:
        ordering = ["key"]

    def __str__(self):
        return self.label

    def as_engine_rule(self):
        from .classification import Rule

        return Rule(
            key=self.key,
            label=self.label,
            tag=str(self.tag),
            sensitivity=self.sensitivity,
            name_pattern=self.name_pattern,
            value_pattern=self.value_pattern,
            validator=self.validator,
            min_hit_ratio=self.min_hit_ratio,
            name_only=self.name_only,
            exclude_name_pattern=self.exclude_name_pattern,
        )

    def clean(self):
        import re

        from .classification import VALIDATORS

        errors = {}
        for name in ("name_pattern", "exclude_name_pattern", "value_pattern"):
            try:
                re.compile(getattr(self, name))
            except re.error as exc:
                errors[name] = f"not a valid regular expression: {exc}"
        if self.validator and self.validator not in VALIDATORS:
            errors["validator"] = (
                f"unknown validator; choose one of {', '.join(sorted(VALIDATORS))}"
            )
        if not (0 < self.min_hit_ratio <= 1):
            errors["min_hit_ratio"] = "must be between 0 and 1"
        if not (self.name_pattern or self.value_pattern):
            errors["name_pattern"] = "a rule needs a name pattern or a value pattern"
        if errors:
            raise ValidationError(errors)


class Classification(models.Model):
    """A classifier's suggestion for a field, and the steward's decision on it. The sampled
    values are never stored: only the rule, the hit ratio and the sample size."""

    class Status(models.TextChoices):
        SUGGESTED = "suggested"
        ACCEPTED = "accepted"
        REJECTED = "rejected"

    field = models.ForeignKey(Field, on_delete=models.CASCADE, related_name="classifications")
    rule = models.CharField(max_length=64)
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="+")
    method = models.CharField(max_length=20)
    hit_ratio = models.FloatField(null=True, blank=True)
    sample_size = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.SUGGESTED, db_index=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()
    permission_parent = "field"

    class Meta:
        ordering = ["field", "rule"]
        constraints = [
            models.UniqueConstraint(fields=["field", "rule"], name="classification_unique")
        ]

    def __str__(self):
        return f"{self.field}: {self.tag} ({self.status})"
