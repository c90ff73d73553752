from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from governance.admin import GovernedAdmin, ReadOnlyAdmin
from governance.permissions import can
from sources.admin import DataSourceAdmin

from . import selectors
from .models import Classification, ClassifierRule, Field, SchemaVersion, Table, Tag, TagCategory
from .services import classification_decide, scan_enqueue


class FieldInline(admin.TabularInline):
    model = Field
    extra = 0
    fields = [
        "position",
        "name",
        "data_type",
        "native_type",
        "nullable",
        "is_primary_key",
        "foreign_key",
        "description",
        "removed",
    ]
    readonly_fields = ["removed"]
    show_change_link = True


@admin.register(Table)
class TableAdmin(GovernedAdmin):
    list_display = [
        "fqn",
        "kind",
        "source",
        "owner",
        "field_count",
        "row_count",
        "removed",
        "updated_at",
    ]
    list_filter = [
        "kind",
        "removed",
        ("source", admin.RelatedOnlyFieldListFilter),
        "tags",
        "criticality",
        "pci_scope",
        "fields__classifications__tag",
    ]
    search_fields = ["fqn", "name", "description", "comment", "fields__name", "tags__name"]
    readonly_fields = [
        "fqn",
        "comment",
        "first_seen",
        "removed",
        "removed_at",
        "schema_versions",
        "created_at",
        "updated_at",
    ]
    filter_horizontal = ["tags"]
    inlines = [FieldInline]
    # Stated here as well as on the model: the field count's GROUP BY drops the model's
    # default order, and autocompletes page through this list.
    ordering = ["fqn"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "source",
                    "schema",
                    "name",
                    "kind",
                    "fqn",
                    "description",
                    "comment",
                    "owner",
                    "tags",
                ]
            },
        ),
        (
            "Governance",
            {"fields": Table.GOVERNANCE_ATTRS},
        ),
        (
            "From the source",
            {
                "fields": [
                    "row_count",
                    "size_bytes",
                    "view_definition",
                    "properties",
                    "first_seen",
                    "removed",
                    "removed_at",
                    "schema_versions",
                ]
            },
        ),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # A table does not move between sources (as in the API): its name, grants and scans
        # come from the source it was created under.
        readonly = super().get_readonly_fields(request, obj)
        return readonly if obj is None else ["source", *readonly]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("source", "owner")
            .annotate(_field_count=selectors.field_count())
        )

    @admin.display(description="fields", ordering="_field_count")
    def field_count(self, table):
        return table._field_count

    @admin.display(description="schema versions")
    def schema_versions(self, table):
        url = reverse("admin:catalog_schemaversion_changelist")
        return format_html(
            '<a href="{}?table__id__exact={}">{} version(s) with diffs</a>',
            url,
            table.pk,
            table.versions.count(),
        )


@admin.register(Field)
class FieldAdmin(GovernedAdmin):
    list_display = ["name", "table", "data_type", "nullable", "is_primary_key", "removed"]
    list_filter = ["data_type", "is_primary_key", "removed", "tags"]
    search_fields = ["name", "description", "table__fqn"]
    readonly_fields = ["comment", "removed"]
    filter_horizontal = ["tags"]
    autocomplete_fields = ["table"]

    def get_readonly_fields(self, request, obj=None):
        # Chosen when the field is added (among tables the user may change), fixed after.
        readonly = super().get_readonly_fields(request, obj)
        return readonly if obj is None else ["table", *readonly]


@admin.register(SchemaVersion)
class SchemaVersionAdmin(ReadOnlyAdmin):
    list_display = ["table", "version", "created_at", "summary"]
    list_filter = ["created_at"]
    search_fields = ["table__fqn"]
    readonly_fields = ["table", "version", "created_at", "job", "diff_view", "fields"]
    exclude = ["diff"]

    @admin.display(description="changes")
    def summary(self, version):
        diff = version.diff
        return (
            f"+{len(diff.get('added', []))} −{len(diff.get('removed', []))} "
            f"~{len(diff.get('changed', []))}"
        )

    @admin.display(description="diff")
    def diff_view(self, version):
        diff = version.diff
        rows = [("added", name, "") for name in diff.get("added", [])]
        rows += [("removed", name, "") for name in diff.get("removed", [])]
        rows += [
            ("changed", c["field"], f"{c['before']} → {c['after']}")
            for c in diff.get("changed", [])
        ]
        return format_html(
            "<table>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )


@admin.register(TagCategory)
class TagCategoryAdmin(GovernedAdmin):
    list_display = ["name", "mutually_exclusive", "description"]
    search_fields = ["name"]


@admin.register(Tag)
class TagAdmin(GovernedAdmin):
    list_display = ["__str__", "category", "description"]
    list_filter = ["category"]
    search_fields = ["name", "category__name"]


@admin.register(ClassifierRule)
class ClassifierRuleAdmin(GovernedAdmin):
    list_display = [
        "key",
        "label",
        "tag",
        "validator",
        "min_hit_ratio",
        "name_only",
        "enabled",
        "builtin",
    ]
    list_filter = ["enabled", "builtin", "name_only"]
    search_fields = ["key", "label"]


@admin.register(Classification)
class ClassificationAdmin(ReadOnlyAdmin):
    list_display = [
        "field",
        "tag",
        "rule",
        "method",
        "hit_ratio",
        "sample_size",
        "status",
        "decided_by",
    ]
    list_filter = ["status", "rule", "tag"]
    search_fields = ["field__name", "field__table__fqn"]
    actions = ["accept", "reject"]

    def _decide(self, request, queryset, status):
        allowed = [
            c
            for c in queryset.select_related("field__table__source")
            if self._may_decide(request, c)
        ]
        classification_decide(allowed, status=status, user=request.user)
        skipped = queryset.count() - len(allowed)
        self.message_user(
            request,
            f"{len(allowed)} suggestion(s) {status}"
            + (f"; {skipped} you may not change were skipped" if skipped else ""),
            messages.SUCCESS if not skipped else messages.WARNING,
        )

    def _may_decide(self, request, classification):
        return can(request.user, "change", classification.field)

    @admin.action(description="Accept selected suggestions (tag the fields)")
    def accept(self, request, queryset):
        self._decide(request, queryset, Classification.Status.ACCEPTED)

    @admin.action(description="Reject selected suggestions (not raised again)")
    def reject(self, request, queryset):
        self._decide(request, queryset, Classification.Status.REJECTED)


@admin.action(description="Scan now")
def scan_now(modeladmin, request, queryset):
    """Queue a scan of each selected source the user may change (one at a time per source)."""
    links = []
    for source in queryset:
        if not modeladmin.has_change_permission(request, source):
            modeladmin.message_user(request, f"{source}: you may not scan it.", messages.WARNING)
            continue
        job, queued = scan_enqueue(source=source, user=request.user)
        url = reverse("admin:governance_jobrun_change", args=[job.pk])
        links.append(
            format_html(
                '<a href="{}">{} (job #{}{})</a>',
                url,
                source,
                job.pk,
                "" if queued else ", already running",
            )
        )
    if links:
        modeladmin.message_user(
            request,
            format_html("Scanning: {}", format_html_join(", ", "{}", ((link,) for link in links))),
        )


# Sources cannot import the catalog; the catalog adds its action to the sources screen.
DataSourceAdmin.actions = [*DataSourceAdmin.actions, scan_now]
