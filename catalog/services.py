"""Applying what a connector read to the catalog, in one transaction.

A scan compares the source's metadata with the catalog and writes only differences: new,
changed and removed tables and fields, a schema version per table whose structure changed,
classification suggestions, change-log entries for tables, and `schema.changed` events.
A scan that finds nothing new writes no rows at all.
"""

from collections import defaultdict

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from governance import changelog, events
from governance.jobs import TransientError
from governance.models import ChangeLogEntry, JobRun
from sources.connectors import ConnectorError, get_connector
from sources.models import DataSource
from sources.services import network_policy

from . import classification
from .models import Classification, ClassifierRule, Field, SchemaVersion, Table, Tag, TagCategory
from .signals import views_changed

TRANSIENT = {"refused", "timeout", "dns"}
TABLE_ATTRS = ("kind", "comment", "row_count", "size_bytes", "view_definition", "properties")
FIELD_ATTRS = (
    "position",
    "data_type",
    "native_type",
    "nullable",
    "default",
    "is_primary_key",
    "foreign_key",
    "comment",
    "presence",
)
SAMPLED_TYPES = {"string", "text", "integer", "decimal", "other", "json"}


class ScanFailed(Exception):
    def __init__(self, kind, message):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def _connector_error(exc):
    if exc.kind in TRANSIENT:
        return TransientError(f"{exc.kind}: {exc.message}")
    return ScanFailed(exc.kind, exc.message)


def source_scan(*, source, job=None):
    """Read the source's metadata (and samples, where allowed) and apply it. Returns counts."""
    progress = job.set_progress if job else (lambda *a: None)
    connector = get_connector(source.connection_spec(), network_policy())
    try:
        metas = connector.introspect(
            source.scan_rules(),
            progress=lambda done, total, msg: progress(5 + 55 * done / max(total, 1), msg),
        )
        samples = {}
        if source.scan_sample_values:
            for index, meta in enumerate(metas, start=1):
                columns = [c.name for c in meta.columns if c.data_type in SAMPLED_TYPES]
                if columns:
                    samples[(meta.schema, meta.name)] = connector.sample_values(
                        meta, columns, source.scan_sample_size
                    )
                if index % 50 == 0:
                    progress(60 + 20 * index / len(metas), f"sampled {index} of {len(metas)}")
    except ConnectorError as exc:
        raise _connector_error(exc) from exc
    progress(80, f"applying {len(metas)} tables")
    with transaction.atomic():
        # One scan of a source applies at a time; a second one waits here, then finds
        # nothing left to change.
        source = DataSource.objects.select_for_update().get(pk=source.pk)
        counts = catalog_apply(source, metas, samples, job=job)
        DataSource.objects.filter(pk=source.pk).update(last_scan_at=timezone.now())
    return counts


def _field_values(meta_column):
    return {name: getattr(meta_column, name) for name in FIELD_ATTRS} | {
        "default": meta_column.default,
        "foreign_key": meta_column.foreign_key or "",
        "comment": meta_column.comment or "",
    }


def _structure(fields):
    return {f.name: f.structure() for f in fields if not f.removed}


def _diff(before, after):
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = [
        {"field": name, "before": before[name], "after": after[name]}
        for name in sorted(set(before) & set(after))
        if before[name] != after[name]
    ]
    return {"added": added, "removed": removed, "changed": changed}


def catalog_apply(source, metas, samples=None, job=None):
    """Write the difference between `metas` (what the source has now) and the catalog."""
    samples = samples or {}
    now = timezone.now()
    counts = dict.fromkeys(
        (
            "tables_added",
            "tables_changed",
            "tables_removed",
            "fields_added",
            "fields_changed",
            "fields_removed",
            "versions",
            "suggestions",
        ),
        0,
    )
    existing = {(t.schema, t.name): t for t in Table.objects.filter(source=source)}
    fields = defaultdict(dict)
    for f in Field.objects.filter(table__source=source):
        fields[f.table_id][f.name] = f

    new_tables, changed_tables, table_changes, redefined = [], [], [], []
    for meta in metas:
        table = existing.get((meta.schema, meta.name))
        values = {name: getattr(meta, name) for name in TABLE_ATTRS}
        values["comment"] = meta.comment or ""
        values["view_definition"] = meta.view_definition or ""
        if table is None:
            table = Table(
                source=source,
                schema=meta.schema,
                name=meta.name,
                first_seen=now,
                fqn=Table.make_fqn(source.name, meta.schema, meta.name),
                **values,
            )
            new_tables.append(table)
            existing[(meta.schema, meta.name)] = table
            continue
        before = changelog.snapshot(table)
        dirty = [k for k, v in values.items() if getattr(table, k) != v]
        for key in dirty:
            setattr(table, key, values[key])
        if table.view_definition and ("view_definition" in dirty or table.removed):
            redefined.append(table)
        if table.removed:
            table.removed, table.removed_at = False, None
            dirty += ["removed", "removed_at"]
        if dirty:
            table.updated_at = now
            changed_tables.append(table)
            table_changes.append((table, ChangeLogEntry.Action.UPDATE, before))
    seen = {(m.schema, m.name) for m in metas}
    for key, table in existing.items():
        if key not in seen and not table.removed:
            before = changelog.snapshot(table)
            table.removed, table.removed_at, table.updated_at = True, now, now
            changed_tables.append(table)
            table_changes.append((table, ChangeLogEntry.Action.UPDATE, before))
            counts["tables_removed"] += 1

    Table.objects.bulk_create(new_tables, batch_size=1000)
    if changed_tables:
        Table.objects.bulk_update(
            changed_tables, [*TABLE_ATTRS, "removed", "removed_at", "updated_at"], batch_size=1000
        )
    changelog.record_many(
        Table, [(t, ChangeLogEntry.Action.CREATE, None) for t in new_tables] + table_changes
    )
    counts["tables_added"] = len(new_tables)
    counts["tables_changed"] = len(changed_tables) - counts["tables_removed"]

    new_fields, changed_fields, versions, changed_tables_events = [], [], [], []
    last_versions = dict(
        SchemaVersion.objects.filter(table__source=source)
        .values("table_id")
        .annotate(v=Max("version"))
        .values_list("table_id", "v")
    )
    for meta in metas:
        table = existing[(meta.schema, meta.name)]
        current = fields[table.pk]
        before = _structure(current.values())
        seen_names = set()
        for column in meta.columns:
            seen_names.add(column.name)
            values = _field_values(column)
            field = current.get(column.name)
            if field is None:
                field = Field(table=table, name=column.name, **values)
                new_fields.append(field)
                current[column.name] = field
                continue
            dirty = [k for k, v in values.items() if getattr(field, k) != v]
            if field.removed:
                field.removed = False
                dirty.append("removed")
            if dirty:
                for key in dirty:
                    if key in values:
                        setattr(field, key, values[key])
                field.updated_at = now
                changed_fields.append(field)
        for name, field in current.items():
            if name not in seen_names and not field.removed:
                field.removed, field.updated_at = True, now
                changed_fields.append(field)
                counts["fields_removed"] += 1
        after = _structure(current.values())
        if before != after or (table.pk not in last_versions and after):
            diff = _diff(before, after)
            version = last_versions.get(table.pk, 0) + 1
            versions.append(
                SchemaVersion(table=table, version=version, job=job, fields=after, diff=diff)
            )
            if version > 1:
                changed_tables_events.append((table, {"version": version, **diff}))
    Field.objects.bulk_create(new_fields, batch_size=2000)
    if changed_fields:
        Field.objects.bulk_update(
            changed_fields, [*FIELD_ATTRS, "removed", "updated_at"], batch_size=2000
        )
    SchemaVersion.objects.bulk_create(versions, batch_size=2000)
    counts["fields_added"] = len(new_fields)
    counts["fields_changed"] = len(changed_fields) - counts["fields_removed"]
    counts["versions"] = len(versions)
    if changed_tables_events:
        events.emit_many("schema.changed", changed_tables_events)
    counts["suggestions"] = classify_fields(source, metas, existing, fields, samples)
    views = [t for t in new_tables if t.view_definition] + redefined
    for _, response in views_changed.send(Table, source=source, tables=views, job=job):
        counts.update(response or {})
    return counts


def classify_fields(source, metas, tables, fields, samples):
    """Suggest classifications; a (field, rule) pair decided or suggested before is kept as
    it is, so a rejected suggestion is not raised again."""
    rules = list(ClassifierRule.objects.filter(enabled=True).select_related("tag__category"))
    if not rules:
        return 0
    engine_rules = classification.RuleSet(r.as_engine_rule() for r in rules)
    tag_for = {r.key: r.tag for r in rules}
    table_ids = [t.pk for t in tables.values()]
    known = (
        set(
            Classification.objects.filter(field__table_id__in=table_ids).values_list(
                "field_id", "rule"
            )
        )
        if table_ids
        else set()
    )
    suggestions = []
    for meta in metas:
        table = tables[(meta.schema, meta.name)]
        table_samples = samples.get((meta.schema, meta.name), {})
        for column in meta.columns:
            field = fields[table.pk][column.name]
            for suggestion in classification.classify(
                column.name, column.data_type, table_samples.get(column.name), engine_rules
            ):
                if (field.pk, suggestion.rule) in known:
                    continue
                known.add((field.pk, suggestion.rule))
                suggestions.append(
                    Classification(
                        field=field,
                        rule=suggestion.rule,
                        tag=tag_for[suggestion.rule],
                        method=suggestion.method,
                        hit_ratio=suggestion.hit_ratio,
                        sample_size=suggestion.sample_size,
                    )
                )
    Classification.objects.bulk_create(suggestions, batch_size=2000)
    return len(suggestions)


def tag_from_path(path):
    """ "PII.Email" -> the Tag "Email" in category "PII" (both created when missing)."""
    category_name, _, tag_name = path.partition(".")
    category, _ = TagCategory.objects.get_or_create(name=category_name)
    tag, _ = Tag.objects.get_or_create(category=category, name=tag_name or category_name)
    return tag


def sync_builtin_rules(**kwargs):
    """Keep the built-in classifier rules as data, so stewards see, disable or copy them."""
    for rule in classification.BUILTIN_RULES:
        ClassifierRule.objects.update_or_create(
            key=rule.key,
            defaults={
                "label": rule.label,
                "tag": tag_from_path(rule.tag),
                "sensitivity": rule.sensitivity,
                "name_pattern": rule.name_pattern,
                "exclude_name_pattern": rule.exclude_name_pattern,
                "value_pattern": rule.value_pattern,
                "validator": rule.validator,
                "min_hit_ratio": rule.min_hit_ratio,
                "name_only": rule.name_only,
                "builtin": True,
            },
        )


def scan_enqueue(*, source, user=None):
    """Queue a scan of the source unless one is already waiting or running: (job, queued)."""
    from governance import jobs
    from governance.models import JobRun

    from .tasks import scan_source

    running = JobRun.objects.filter(
        task=scan_source.name,
        target_id=source.pk,
        status__in=[JobRun.Status.PENDING, JobRun.Status.RUNNING],
    ).first()
    if running is not None:
        return running, False
    return jobs.enqueue(
        scan_source, name="Scan", target=source, user=user, source_id=source.pk
    ), True


def classification_decide(classifications, *, status, user):
    """Accept (the field gets the tag) or reject (never suggested again) suggestions."""
    now = timezone.now()
    with transaction.atomic():
        for item in classifications:
            item.status, item.decided_by, item.decided_at = status, user, now
            item.save(update_fields=["status", "decided_by", "decided_at"])
            if status == Classification.Status.ACCEPTED:
                item.field.tags.add(item.tag)
            else:
                item.field.tags.remove(item.tag)


def introspect_table(*, source, table_name, schema_name=""):
    """Read one table's metadata from the source (the "metadata assist"); nothing is saved."""
    connector = get_connector(source.connection_spec(), network_policy())
    return connector.introspect_table(schema_name, table_name)


def scheduled_tasks(source):
    from django_celery_beat.models import PeriodicTask

    from .signals import task_name
    from .tasks import scan_source

    last_scan = (
        JobRun.objects.filter(task=scan_source.name, target_id=source.pk).order_by("-id").first()
    )
    rows = []
    for task in PeriodicTask.objects.filter(name=task_name(source)).select_related("crontab"):
        schedule = task.schedule
        now = timezone.now()
        next_run = now + schedule.remaining_estimate(task.last_run_at or now)
        rows.append(
            {
                "name": task.name,
                "task": task.task,
                "cron": source.scan_schedule,
                "enabled": task.enabled,
                "last_run_at": task.last_run_at,
                "next_run_at": next_run,
                "total_run_count": task.total_run_count,
                "last_status": last_scan.status if last_scan else None,
                "last_job": last_scan.pk if last_scan else None,
            }
        )
    return rows


def tag_summary(source):
    from django.db.models import Count

    tables = (
        Tag.objects.filter(tables__source=source, tables__removed=False)
        .annotate(n=Count("tables", distinct=True))
        .select_related("category")
    )
    fields = (
        Tag.objects.filter(fields__table__source=source, fields__removed=False)
        .annotate(n=Count("fields", distinct=True))
        .select_related("category")
    )
    summary = {}
    for tag in tables:
        summary.setdefault(str(tag), {"tag": str(tag), "tables": 0, "fields": 0})["tables"] = tag.n
    for tag in fields:
        summary.setdefault(str(tag), {"tag": str(tag), "tables": 0, "fields": 0})["fields"] = tag.n
    return sorted(summary.values(), key=lambda row: row["tag"])
