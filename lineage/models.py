"""Lineage: table edges (upstream table -> downstream table) and the field edges under them,
each with its provenance and the evidence that supports it.

One edge per (upstream, downstream) pair whatever its origin; a steward's manual edge is
approved on creation, an edge inferred from SQL or received from OpenLineage waits for a
steward. A grant on a source covers the lineage into its tables (permission parent: the
downstream table), and an edge is visible only to whoever may view both its tables
(LineageEdgeQuerySet.restrict), which field edges and evidence inherit through their edge.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from governance.models import BaseModel
from governance.permissions import NOTHING, RestrictedQuerySet, perm_name


class Origin(models.TextChoices):
    MANUAL = "manual"
    INFERRED = "inferred"
    OPENLINEAGE = "openlineage", "OpenLineage"


class Status(models.TextChoices):
    APPROVED = "approved"
    PENDING = "pending"
    REJECTED = "rejected"


class LineageEdgeQuerySet(RestrictedQuerySet):
    def rule(self, user, action="view"):
        """The downstream table grants an edge (its permission parent); the upstream table
        must be visible too, so that no list, log, job or evidence names a table the user
        may not see. The one place this rule lives: admin, API, change log, jobs, bulk
        export and field edges and evidence (through their edge) all come here."""
        rule = super().rule(user, action)
        table = self.model.upstream.field.related_model
        if rule is NOTHING or user.is_superuser or user.has_perm(perm_name(table, "view")):
            return rule
        visible = table.objects.restrict(user, "view").values("pk")
        both_ends = models.Q(upstream__in=visible)
        if user.has_perm(perm_name(self.model, action)):  # a global grant skipped the parent
            both_ends &= models.Q(downstream__in=visible)
        return both_ends if rule is None else rule & both_ends


class LineageEdge(BaseModel):
    upstream = models.ForeignKey(
        "catalog.Table", on_delete=models.CASCADE, related_name="downstream_edges"
    )
    downstream = models.ForeignKey(
        "catalog.Table", on_delete=models.CASCADE, related_name="upstream_edges"
    )
    origin = models.CharField(max_length=12, choices=Origin.choices)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    confidence = models.FloatField(default=1.0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = LineageEdgeQuerySet.as_manager()
    permission_parent = "downstream"

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["upstream", "downstream"], name="lineage_edge_unique"),
            models.CheckConstraint(
                condition=~Q(upstream=F("downstream")), name="lineage_edge_no_self_loop"
            ),
        ]
        indexes = [
            models.Index(fields=["upstream", "status"]),
            models.Index(fields=["downstream", "status"]),
        ]

    def __str__(self):
        return f"{self.upstream} -> {self.downstream}"


class FieldLineageEdge(models.Model):
    """A field-level edge, always under the table edge between the fields' tables."""

    edge = models.ForeignKey(LineageEdge, on_delete=models.CASCADE, related_name="field_edges")
    upstream = models.ForeignKey(
        "catalog.Field", on_delete=models.CASCADE, related_name="downstream_field_edges"
    )
    downstream = models.ForeignKey(
        "catalog.Field", on_delete=models.CASCADE, related_name="upstream_field_edges"
    )
    transformation = models.TextField(blank=True)
    origin = models.CharField(max_length=12, choices=Origin.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()
    permission_parent = "edge"

    class Meta:
        ordering = ["edge", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["upstream", "downstream"], name="field_lineage_edge_unique"
            ),
            models.CheckConstraint(
                condition=~Q(upstream=F("downstream")), name="field_lineage_edge_no_self_loop"
            ),
        ]

    def __str__(self):
        return f"{self.upstream} -> {self.downstream}"


class LineageJob(models.Model):
    """A job that reads and writes datasets, as OpenLineage names it (namespace + name)."""

    namespace = models.CharField(max_length=500)
    name = models.CharField(max_length=500)
    facets = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["namespace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["namespace", "name"], name="lineage_job_unique")
        ]

    def __str__(self):
        return f"{self.namespace}/{self.name}"


class LineageRun(models.Model):
    """One run of a job, with the latest state its OpenLineage events reported."""

    class State(models.TextChoices):
        START = "START"
        RUNNING = "RUNNING"
        COMPLETE = "COMPLETE"
        FAIL = "FAIL"
        ABORT = "ABORT"
        OTHER = "OTHER"

    job = models.ForeignKey(LineageJob, on_delete=models.CASCADE, related_name="runs")
    run_id = models.UUIDField(unique=True)
    state = models.CharField(max_length=10, choices=State.choices)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    event_time = models.DateTimeField()
    facets = models.JSONField(default=dict, blank=True)
    inputs = models.ManyToManyField("catalog.Table", blank=True, related_name="+")
    outputs = models.ManyToManyField("catalog.Table", blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-event_time"]

    def __str__(self):
        return f"{self.job} run {self.run_id}"


class LineageEvidence(models.Model):
    """Why an edge exists: a steward, a SQL statement, a view definition or an OpenLineage
    run. Several pieces of evidence may support one edge."""

    class Kind(models.TextChoices):
        MANUAL = "manual"
        SQL = "sql", "SQL statement"
        VIEW = "view", "view definition"
        OPENLINEAGE = "openlineage", "OpenLineage run"

    edge = models.ForeignKey(LineageEdge, on_delete=models.CASCADE, related_name="evidence")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # The same evidence is recorded once per edge: the SQL text's hash, the view's id or
    # the run id, as a string.
    key = models.CharField(max_length=100)
    sql_hash = models.CharField(max_length=64, blank=True)
    snippet = models.TextField(blank=True)
    # [table id, table name] for every catalog table the snippet names, as they were when
    # it was recorded: a reader who may not view one of them reads that name redacted.
    tables = models.JSONField(default=list, blank=True)
    view = models.ForeignKey(
        "catalog.Table", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        LineageRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="evidence"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()
    permission_parent = "edge"

    class Meta:
        ordering = ["edge", "id"]
        verbose_name_plural = "lineage evidence"
        constraints = [
            models.UniqueConstraint(fields=["edge", "kind", "key"], name="lineage_evidence_once")
        ]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.edge}"


class LineageNamespace(BaseModel):
    """An OpenLineage dataset namespace that names a source when its URL does not match the
    source's host and port (a proxy, a DNS alias, a container name)."""

    namespace = models.CharField(max_length=500, unique=True)
    source = models.ForeignKey(
        "sources.DataSource", on_delete=models.CASCADE, related_name="lineage_namespaces"
    )

    objects = RestrictedQuerySet.as_manager()
    permission_parent = "source"

    class Meta:
        ordering = ["namespace"]

    def __str__(self):
        return f"{self.namespace} -> {self.source}"
