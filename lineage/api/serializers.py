from rest_framework import serializers

from ..graph import DEFAULT_STATUSES, MAX_DEPTH, MIN_DEPTH
from ..models import FieldLineageEdge, LineageEdge, LineageEvidence, Origin, Status
from ..selectors import redact_evidence

ID = {"min_value": 1, "max_value": 2**63 - 1}


class TableRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    fqn = serializers.CharField()


class FieldRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    table = serializers.IntegerField(source="table_id")


def _reader(serializer):
    return serializer.context["request"].user


class LineageEvidenceSerializer(serializers.ModelSerializer):
    """Evidence as the requesting user may read it (lineage.selectors.redact_evidence)."""

    run = serializers.UUIDField(source="run.run_id", read_only=True, default=None, allow_null=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    def to_representation(self, evidence):
        redact_evidence(_reader(self), [evidence])  # done already when read in a batch
        return super().to_representation(evidence)

    class Meta:
        model = LineageEvidence
        fields = [
            "id",
            "kind",
            "key",
            "sql_hash",
            "snippet",
            "view",
            "run",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class FieldLineageEdgeSerializer(serializers.ModelSerializer):
    upstream_field = FieldRefSerializer(source="upstream", read_only=True)
    downstream_field = FieldRefSerializer(source="downstream", read_only=True)

    class Meta:
        model = FieldLineageEdge
        fields = ["id", "edge", "upstream_field", "downstream_field", "transformation", "origin"]
        read_only_fields = fields


class LineageEdgeListSerializer(serializers.ListSerializer):
    """A page of edges: their evidence is redacted in one batch (one query) first."""

    def to_representation(self, data):
        edges = list(data.all() if hasattr(data, "all") else data)
        redact_evidence(_reader(self), [ev for edge in edges for ev in edge.evidence.all()])
        return super().to_representation(edges)


class LineageEdgeSerializer(serializers.ModelSerializer):
    upstream = TableRefSerializer(read_only=True)
    downstream = TableRefSerializer(read_only=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    decided_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    evidence = LineageEvidenceSerializer(many=True, read_only=True)
    field_edges = FieldLineageEdgeSerializer(many=True, read_only=True)

    class Meta:
        model = LineageEdge
        list_serializer_class = LineageEdgeListSerializer
        fields = [
            "id",
            "upstream",
            "downstream",
            "origin",
            "status",
            "confidence",
            "created_by",
            "created_at",
            "decided_by",
            "decided_at",
            "evidence",
            "field_edges",
        ]
        read_only_fields = fields


class TableEdgeRequestSerializer(serializers.Serializer):
    source_table_id = serializers.IntegerField(**ID, help_text="The upstream table.")
    target_table_id = serializers.IntegerField(**ID, help_text="The downstream table.")
    # Inferred and OpenLineage edges come from their own endpoints.
    lineage_source = serializers.ChoiceField(choices=[Origin.MANUAL], default=Origin.MANUAL)


class FieldEdgeRequestSerializer(serializers.Serializer):
    source_field_id = serializers.IntegerField(**ID, help_text="The upstream field.")
    target_field_id = serializers.IntegerField(**ID, help_text="The downstream field.")
    transformation = serializers.CharField(required=False, allow_blank=True, default="")


class StatusListField(serializers.CharField):
    """status=approved,pending (or repeated): the edge statuses a walk follows."""

    def to_internal_value(self, data):
        values = [v.strip() for v in super().to_internal_value(data).split(",") if v.strip()]
        unknown = sorted(set(values) - set(Status.values))
        if unknown or not values:
            raise serializers.ValidationError(
                f"choose among {', '.join(Status.values)}"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
        return tuple(dict.fromkeys(values))


class GraphQuerySerializer(serializers.Serializer):
    depth = serializers.IntegerField(min_value=MIN_DEPTH, max_value=MAX_DEPTH, default=3)
    fields = serializers.BooleanField(default=False, help_text="Add the field edges.")
    status = StatusListField(
        required=False,
        default=tuple(DEFAULT_STATUSES),
        help_text="Edge statuses to follow, comma-separated (default approved,pending).",
    )


class ImpactQuerySerializer(serializers.Serializer):
    depth = serializers.IntegerField(min_value=MIN_DEPTH, max_value=MAX_DEPTH, default=MAX_DEPTH)
    status = StatusListField(required=False, default=tuple(DEFAULT_STATUSES))


class GraphNodeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    fqn = serializers.CharField()
    name = serializers.CharField()
    schema = serializers.CharField()
    source = serializers.IntegerField(allow_null=True)
    source_name = serializers.CharField(allow_null=True)
    kind = serializers.CharField()
    owner = serializers.CharField(allow_null=True)
    level = serializers.IntegerField()


class GraphEdgeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    upstream = serializers.IntegerField()
    downstream = serializers.IntegerField()
    origin = serializers.CharField()
    status = serializers.CharField()
    confidence = serializers.FloatField()
    level = serializers.IntegerField()


class GraphFieldEdgeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    edge = serializers.IntegerField()
    upstream_field = serializers.DictField()
    downstream_field = serializers.DictField()
    transformation = serializers.CharField()
    origin = serializers.CharField()


class GraphLevelSerializer(serializers.Serializer):
    level = serializers.IntegerField()
    tables = serializers.IntegerField()
    edges = serializers.IntegerField()


class GraphSerializer(serializers.Serializer):
    """The answer of upstream and downstream (the schema for the documentation)."""

    root = serializers.IntegerField()
    direction = serializers.ChoiceField(choices=["upstream", "downstream"])
    depth = serializers.IntegerField()
    nodes = GraphNodeSerializer(many=True)
    edges = GraphEdgeSerializer(many=True)
    field_edges = GraphFieldEdgeSerializer(many=True, required=False)
    levels = GraphLevelSerializer(many=True)
    hidden = serializers.IntegerField(help_text="Tables reached that you may not view.")


class ImpactOwnerSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.CharField()


class ImpactTableSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    fqn = serializers.CharField()
    name = serializers.CharField()
    source = serializers.IntegerField(allow_null=True)
    source_name = serializers.CharField(allow_null=True)
    kind = serializers.CharField()
    owner = ImpactOwnerSerializer(allow_null=True)
    depth = serializers.IntegerField()


class ImpactSerializer(serializers.Serializer):
    root = serializers.IntegerField()
    depth = serializers.IntegerField()
    count = serializers.IntegerField()
    tables = ImpactTableSerializer(many=True)
    hidden = serializers.IntegerField(help_text="Downstream tables that you may not view.")
