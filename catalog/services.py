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

from governance import changelog, events, jobs
from governance.jobs import TransientError
from governance.models import ChangeLogEntry, JobRun
from sources.connectors import ConnectorError, get_connector
from sources.models import DataSource
from sources.services import network_policy

from . import classification
from .models import Classification, ClassifierRule, Field, SchemaVersion, Table, Tag, TagCategory
from .signals import tables_added, views_changed

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
# Tables whose fields are compared and written together: bounds memory, not the query count.
CHUNK_TABLES = 500


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
        if job is not None:
            jobs.hold(job)  # commit nothing if this run was retried as another meanwhile
        counts = catalog_apply(source, metas, samples, job=job)
        DataSource.objects.filter(pk=source.pk).update(last_scan_at=timezone.now())
    return counts


def _table_values(meta):
    """The scanned attributes of a table, in TABLE_ATTRS order."""
    return (
        meta.kind,
        meta.comment or "",
        meta.row_count,
        meta.size_bytes,
        meta.view_definition or "",
        meta.properties,
    )


def _column_values(column):
    """The scanned attributes of a field, in FIELD_ATTRS order."""
    return (
        column.position,
        column.data_type,
        column.native_type,
        column.nullable,
        column.default,
        column.is_primary_key,
        column.foreign_key or "",
        column.comment or "",
        column.presence,
    )


def _structure(shapes):
    """{name: structure tuple} -> {name: {"data_type": ..., ...}} as schema versions keep it."""
    return {name: dict(zip(Field.STRUCTURE, shape, strict=True)) for name, shape in shapes.items()}


def _diff(before, after):
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = [
        {"field": name, "before": before[name], "after": after[name]}
        for name in sorted(set(before) & set(after))
        if before[name] != after[name]
    ]
    return {"added": added, "removed": removed, "changed": changed}


def _batches(items, size):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Classifier:
    """The enabled classifier rules, loaded once per scan. A column's suggestions depend only
    on its name and type when it was not sampled, so those are worked out once per scan."""

    MEMO_LIMIT = 50_000

    def __init__(self):
        rules = list(ClassifierRule.objects.filter(enabled=True).select_related("tag__category"))
        self.rules = classification.RuleSet(r.as_engine_rule() for r in rules)
        self.tag_for = {r.key: r.tag_id for r in rules}
        self._memo = {}

    def __bool__(self):
        return bool(self.rules)

    def suggest(self, column, values):
        if values is not None:
            return classification.classify(column.name, column.data_type, values, self.rules)
        key = (column.name, column.data_type)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= self.MEMO_LIMIT:
                self._memo.clear()
            found = self._memo[key] = tuple(
                classification.classify(column.name, column.data_type, None, self.rules)
            )
        return found


def catalog_apply(source, metas, samples=None, job=None):
    """Write the difference between `metas` (what the source has now) and the catalog.

    Tables are compared all at once; fields, schema versions and classification suggestions
    a few hundred tables at a time, read as plain rows and written with COPY (PostgreSQL) or
    bulk inserts, so that memory stays flat as the source grows. Unchanged rows are only read.
    """
    samples = samples or {}
    metas = list({(meta.schema, meta.name): meta for meta in metas}.values())
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
    table_ids, new_tables, redefined = _apply_tables(source, metas, now, counts)
    classifier = _Classifier()
    schema_changes = []
    for chunk in _batches(metas, CHUNK_TABLES):
        _apply_fields(chunk, table_ids, samples, classifier, now, job, counts, schema_changes)
    if schema_changes:
        tables = {}
        for batch in _batches({pk for pk, _ in schema_changes}, 1000):
            tables.update(Table.objects.in_bulk(batch))
        events.emit_many(
            "schema.changed", [(tables[pk], payload) for pk, payload in schema_changes]
        )
    for _, response in tables_added.send(Table, source=source, tables=new_tables, job=job):
        counts.update(response or {})
    # New views go whether or not the source showed their definition (lineage counts those
    # it could not read); known ones when their definition changed.
    view_kinds = (Table.Kind.VIEW, Table.Kind.MATERIALIZED_VIEW)
    views = [t for t in new_tables if t.kind in view_kinds] + redefined
    for _, response in views_changed.send(Table, source=source, tables=views, job=job):
        counts.update(response or {})
    return counts


def _apply_tables(source, metas, now, counts):
    """New, changed, returning and removed tables; returns ({(schema, name): id}, the new
    Table objects, the tables whose view definition is new again or changed)."""
    stored = {
        (schema, name): (pk, removed, tuple(values))
        for pk, schema, name, removed, *values in Table.objects.filter(source=source)
        .order_by()
        .values_list("pk", "schema", "name", "removed", *TABLE_ATTRS)
    }
    table_ids, new_tables, updates = {}, [], {}
    for meta in metas:
        key = (meta.schema, meta.name)
        values = _table_values(meta)
        found = stored.get(key)
        if found is None:
            table = Table(
                source=source,
                schema=meta.schema,
                name=meta.name,
                first_seen=now,
                fqn=Table.make_fqn(source.name, meta.schema, meta.name),
                **dict(zip(TABLE_ATTRS, values, strict=True)),
            )
            new_tables.append(table)
            continue
        pk, removed, stored_values = found
        table_ids[key] = pk
        if removed or stored_values != values:
            updates[pk] = values
    seen = {(meta.schema, meta.name) for meta in metas}
    gone = [pk for key, (pk, removed, _) in stored.items() if key not in seen and not removed]

    changed_tables, table_changes, redefined = [], [], []
    for batch in _batches([*updates, *gone], 1000):
        loaded = Table.objects.in_bulk(batch)
        for pk in batch:
            table = loaded[pk]
            before = changelog.snapshot(table)
            if pk in updates:
                values = dict(zip(TABLE_ATTRS, updates[pk], strict=True))
                dirty = [k for k, v in values.items() if getattr(table, k) != v]
                for key in dirty:
                    setattr(table, key, values[key])
                if table.view_definition and ("view_definition" in dirty or table.removed):
                    redefined.append(table)
                if table.removed:
                    table.removed, table.removed_at = False, None
                    dirty += ["removed", "removed_at"]
                if not dirty:
                    continue
            else:
                table.removed, table.removed_at = True, now
                counts["tables_removed"] += 1
            table.updated_at = now
            changed_tables.append(table)
            table_changes.append((table, ChangeLogEntry.Action.UPDATE, before))

    changelog.insert_objects(new_tables)
    if changed_tables:
        Table.objects.bulk_update(
            changed_tables, [*TABLE_ATTRS, "removed", "removed_at", "updated_at"], batch_size=1000
        )
    changelog.record_many(
        Table, [(t, ChangeLogEntry.Action.CREATE, None) for t in new_tables] + table_changes
    )
    counts["tables_added"] = len(new_tables)
    counts["tables_changed"] = len(changed_tables) - counts["tables_removed"]
    table_ids.update(((t.schema, t.name), t.pk) for t in new_tables)
    return table_ids, new_tables, redefined


FIELD_COLUMNS = ("created_at", "updated_at", "description", "table_id", "name", "removed")
VERSION_COLUMNS = ("table_id", "version", "created_at", "job_id", "fields", "diff")
SUGGESTION_COLUMNS = (
    "field_id",
    "rule",
    "tag_id",
    "method",
    "hit_ratio",
    "sample_size",
    "status",
    "created_at",
)
STRUCTURE_AT = tuple(FIELD_ATTRS.index(name) for name in Field.STRUCTURE)


def _apply_fields(chunk, table_ids, samples, classifier, now, job, counts, schema_changes):
    """Fields, schema versions and suggestions of a few hundred tables."""
    pks = [table_ids[(meta.schema, meta.name)] for meta in chunk]
    stored = defaultdict(dict)
    # id, table_id, name, removed, then FIELD_ATTRS
    for row in (
        Field.objects.filter(table_id__in=pks)
        .order_by()
        .values_list("id", "table_id", "name", "removed", *FIELD_ATTRS)
    ):
        stored[row[1]][row[2]] = row
    last_versions = dict(
        SchemaVersion.objects.filter(table_id__in=pks)
        .order_by()
        .values("table_id")
        .annotate(v=Max("version"))
        .values_list("table_id", "v")
    )
    new_rows, changed, removed_ids, versions, suggestions = [], [], [], [], []
    for meta, pk in zip(chunk, pks, strict=True):
        current = stored.pop(pk, {})
        table_samples = samples.get((meta.schema, meta.name), {})
        before = {
            name: tuple(row[4 + i] for i in STRUCTURE_AT)
            for name, row in current.items()
            if not row[3]
        }
        after = {}
        for column in meta.columns:
            if column.name in after:
                continue  # a name the source reports twice is one field
            values = _column_values(column)
            after[column.name] = tuple(values[i] for i in STRUCTURE_AT)
            row = current.get(column.name)
            if row is None:
                new_rows.append((now, now, "", pk, column.name, False, *values))
                field_id = None
            else:
                field_id = row[0]
                if row[3] or row[4:] != values:
                    changed.append(
                        Field(
                            id=field_id,
                            table_id=pk,
                            name=column.name,
                            removed=False,
                            updated_at=now,
                            **dict(zip(FIELD_ATTRS, values, strict=True)),
                        )
                    )
            if classifier:
                for suggestion in classifier.suggest(column, table_samples.get(column.name)):
                    suggestions.append((pk, column.name, field_id, suggestion))
        removed_ids += [row[0] for name, row in current.items() if name not in after and not row[3]]
        if before != after or (pk not in last_versions and after):
            before_json, after_json = _structure(before), _structure(after)
            diff = _diff(before_json, after_json)
            version = last_versions.get(pk, 0) + 1
            versions.append((pk, version, now, job.pk if job else None, after_json, diff))
            if version > 1:
                schema_changes.append((pk, {"version": version, **diff}))
    del stored

    new_ids = changelog.insert_rows(
        Field, (*FIELD_COLUMNS, *FIELD_ATTRS), new_rows, returning_ids=True
    )
    if changed:
        Field.objects.bulk_update(changed, [*FIELD_ATTRS, "removed", "updated_at"], batch_size=1000)
    for batch in _batches(removed_ids, 1000):
        Field.objects.filter(pk__in=batch).update(removed=True, updated_at=now)
    changelog.insert_rows(SchemaVersion, VERSION_COLUMNS, versions)
    counts["fields_added"] += len(new_rows)
    counts["fields_changed"] += len(changed)
    counts["fields_removed"] += len(removed_ids)
    counts["versions"] += len(versions)
    if suggestions:
        new_ids = {(row[3], row[4]): pk for row, pk in zip(new_rows, new_ids, strict=True)}
        counts["suggestions"] += _suggest(suggestions, new_ids, classifier, now)


def _suggest(suggestions, new_ids, classifier, now):
    """Store new (field, rule) suggestions; a pair decided or suggested before is kept as it
    is, so a rejected suggestion is not raised again. Returns how many were stored."""
    known = set()
    for batch in _batches({pk for pk, _, field_id, _ in suggestions if field_id}, 1000):
        known.update(
            Classification.objects.filter(field__table_id__in=batch)
            .order_by()
            .values_list("field_id", "rule")
        )
    rows = []
    for table_id, name, field_id, suggestion in suggestions:
        field_id = field_id or new_ids[(table_id, name)]
        if (field_id, suggestion.rule) in known:
            continue
        known.add((field_id, suggestion.rule))
        rows.append(
            (
                field_id,
                suggestion.rule,
                classifier.tag_for[suggestion.rule],
                suggestion.method,
                suggestion.hit_ratio,
                suggestion.sample_size,
                Classification.Status.SUGGESTED.value,
                now,
            )
        )
    changelog.insert_rows(Classification, SUGGESTION_COLUMNS, rows)
    return len(rows)


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
