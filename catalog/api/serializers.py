from datetime import datetime

from django.contrib.auth import get_user_model
from rest_framework import serializers

from governance.api.serializers import GovernedModelSerializer
from sources.models import DataSource

from ..models import Classification, Field, SchemaVersion, Table, Tag, TagCategory


class TagField(serializers.SlugRelatedField):
    """Tags read and write as "Category.Name"."""

    def __init__(self, **kwargs):
        super().__init__(
            slug_field="name", queryset=Tag.objects.select_related("category"), many=False, **kwargs
        )

    def to_representation(self, tag):
        return str(tag)

    def to_internal_value(self, data):
        category, _, name = str(data).partition(".")
        tag = Tag.objects.filter(category__name=category, name=name).first()
        if tag is None:
            self.fail("does_not_exist", slug_name="name", value=data)
        return tag


def check_exclusive(tags):
    seen = {}
    for tag in tags:
        if tag.category.mutually_exclusive and seen.setdefault(tag.category_id, tag) != tag:
            raise serializers.ValidationError(
                f"{seen[tag.category_id]} and {tag} are both in the mutually exclusive "
                f"category {tag.category.name}"
            )
    return tags


class TableSerializer(GovernedModelSerializer):
    source = serializers.PrimaryKeyRelatedField(
        queryset=DataSource.objects.all(), required=False, allow_null=True
    )
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        allow_null=True,
    )
    tags = TagField(many=True, required=False)
    last_seen = serializers.SerializerMethodField()
    field_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Table
        fields = [
            "id",
            "source",
            "schema",
            "name",
            "kind",
            "fqn",
            "description",
            "comment",
            "owner",
            "tags",
            "row_count",
            "size_bytes",
            "view_definition",
            "properties",
            "removed",
            "first_seen",
            "last_seen",
            *Table.GOVERNANCE_ATTRS,
            "field_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["fqn", "comment", "removed", "first_seen", "created_at", "updated_at"]
        validators = []  # uniqueness is checked on the fully qualified name in validate()

    def get_last_seen(self, table) -> datetime | None:
        if table.removed:
            return table.removed_at
        return table.source.last_scan_at if table.source_id else None

    def validate_tags(self, tags):
        return check_exclusive(tags)

    def validate(self, attrs):
        source = attrs.get("source", getattr(self.instance, "source", None))
        if self.instance and "source" in attrs and attrs["source"] != self.instance.source:
            raise serializers.ValidationError({"source": "a table cannot move between sources"})
        schema = attrs.get("schema", getattr(self.instance, "schema", ""))
        name = attrs.get("name", getattr(self.instance, "name", ""))
        fqn = Table.make_fqn(source.name if source else None, schema, name)
        clash = Table.objects.filter(fqn=fqn)
        if self.instance:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError({"name": f"a table {fqn!r} already exists"})
        return attrs


class ClassificationSerializer(serializers.ModelSerializer):
    tag = serializers.SerializerMethodField()

    class Meta:
        model = Classification
        fields = ["id", "rule", "tag", "method", "hit_ratio", "sample_size", "status", "decided_at"]
        read_only_fields = fields

    def get_tag(self, classification) -> str:
        return str(classification.tag)


class FieldSerializer(serializers.ModelSerializer):
    tags = TagField(many=True, required=False)
    classification = ClassificationSerializer(source="classifications", many=True, read_only=True)

    class Meta:
        model = Field
        fields = [
            "id",
            "table",
            "name",
            "position",
            "data_type",
            "native_type",
            "nullable",
            "default",
            "is_primary_key",
            "foreign_key",
            "description",
            "comment",
            "tags",
            "classification",
            "removed",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["table", "comment", "removed", "created_at", "updated_at"]
        validators = []  # the table comes from the URL; validate_name checks uniqueness

    def validate_tags(self, tags):
        return check_exclusive(tags)

    def validate_name(self, name):
        table = self.context.get("table") or getattr(self.instance, "table", None)
        clash = Field.objects.filter(table=table, name=name)
        if self.instance:
            clash = clash.exclude(pk=self.instance.pk)
        if table is not None and clash.exists():
            raise serializers.ValidationError(f"the table already has a field {name!r}")
        return name


class SchemaVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = SchemaVersion
        fields = ["id", "version", "created_at", "job", "fields", "diff"]
        read_only_fields = fields


class TagCategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = TagCategory
        fields = ["id", "name", "mutually_exclusive", "description", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


class TagSerializer(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="name", queryset=TagCategory.objects.all())
    path = serializers.SerializerMethodField()

    class Meta:
        model = Tag
        fields = ["id", "category", "name", "path", "description", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def get_path(self, tag) -> str:
        return str(tag)


class ClassificationDetailSerializer(ClassificationSerializer):
    field = serializers.PrimaryKeyRelatedField(read_only=True)
    field_name = serializers.CharField(source="field.name", read_only=True)
    table = serializers.CharField(source="field.table.fqn", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta(ClassificationSerializer.Meta):
        fields = [
            "id",
            "field",
            "field_name",
            "table",
            "rule",
            "tag",
            "method",
            "hit_ratio",
            "sample_size",
            "status",
            "decided_by",
            "decided_at",
            "created_at",
        ]
        read_only_fields = fields


class IntrospectRequestSerializer(serializers.Serializer):
    table_name = serializers.CharField(max_length=255)
    schema_name = serializers.CharField(
        max_length=255, required=False, allow_blank=True, default=""
    )
