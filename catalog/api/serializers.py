from datetime import datetime

from rest_framework import serializers
from rest_framework.relations import MANY_RELATION_KWARGS

from governance.api.fields import ManyRelatedField, SlugRelatedField
from governance.api.serializers import ModelSerializer, OwnerField
from sources.models import DataSource

from ..models import Classification, Field, SchemaVersion, Table, Tag, TagCategory


class TagField(SlugRelatedField):
    """Tags read and write as "Category.Name"."""

    def __init__(self, **kwargs):
        super().__init__(
            slug_field="name", queryset=Tag.objects.select_related("category"), many=False, **kwargs
        )

    @classmethod
    def many_init(cls, *args, **kwargs):  # as DRF's, with the list that takes only lists
        many = {key: kwargs[key] for key in kwargs if key in MANY_RELATION_KWARGS}
        return ManyRelatedField(child_relation=cls(*args, **kwargs), **many)

    def to_representation(self, tag):
        return str(tag)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        category, _, name = data.partition(".")
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


class TableSerializer(ModelSerializer):
    source = serializers.PrimaryKeyRelatedField(
        queryset=DataSource.objects.all(), required=False, allow_null=True
    )
    owner = OwnerField()
    tags = TagField(many=True, required=False)
    last_seen = serializers.SerializerMethodField()
    field_count = serializers.SerializerMethodField()

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

    represented = ("tags",)

    def represent(self, name, table):
        if name == "tags" and hasattr(table, "tag_list"):  # selectors.tables_for_reading
            return [str(tag) for tag in table.tag_list]
        return super().represent(name, table)

    def get_last_seen(self, table) -> datetime | None:
        if table.removed:
            return table.removed_at
        if "source_last_scan_at" in table.__dict__:  # selectors.tables_for_reading
            return table.source_last_scan_at
        return table.source.last_scan_at if table.source_id else None

    def get_field_count(self, table) -> int:
        counted = getattr(table, "field_count", None)  # selectors.tables_for_reading
        return table.fields.filter(removed=False).count() if counted is None else counted

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


class FieldSerializer(ModelSerializer):
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


class TagCategorySerializer(ModelSerializer):
    class Meta:
        model = TagCategory
        fields = ["id", "name", "mutually_exclusive", "description", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


class TagSerializer(ModelSerializer):
    category = SlugRelatedField(slug_field="name", queryset=TagCategory.objects.all())
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
    decided_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

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


class IntrospectedTableSerializer(serializers.Serializer):
    schema = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    columns = serializers.ListField(child=serializers.DictField())
    comment = serializers.CharField()
    row_count = serializers.IntegerField(allow_null=True)
    size_bytes = serializers.IntegerField(allow_null=True)
    view_definition = serializers.CharField()
    properties = serializers.DictField()


class ConnectorErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    error_kind = serializers.CharField(
        required=False,
        help_text="Set when the source answered or failed; absent for a 404 of the source itself.",
    )


class ScheduledTaskSerializer(serializers.Serializer):
    name = serializers.CharField()
    task = serializers.CharField()
    cron = serializers.CharField()
    enabled = serializers.BooleanField()
    last_run_at = serializers.DateTimeField(allow_null=True)
    next_run_at = serializers.DateTimeField()
    total_run_count = serializers.IntegerField()
    last_status = serializers.CharField(allow_null=True)
    last_job = serializers.IntegerField(allow_null=True)


class TagUseSerializer(serializers.Serializer):
    tag = serializers.CharField()
    tables = serializers.IntegerField()
    fields = serializers.IntegerField()
