"""The catalog's section of the bundle (governance.bulk): tables, fields, tags, owners and
classification decisions.

Tables are matched by fully qualified name (source + schema + name), fields by name within
their table. An unchanged object is not written and gets no change-log entry.
Permissions: a new table needs the change permission on its source (a manual table: the
global add permission), an existing table the change permission on it. The export holds the
tables a user may view, streamed chunk by chunk; sources appear by name only, classifications
by rule, tag, decision and hit ratio, never a sampled value.
"""

from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db.models import Q

from governance import changelog
from governance.bulk.exporter import ExportRefused
from governance.bulk.formats import split_list
from governance.bulk.importer import CREATE, INVALID, SKIP
from governance.bulk.schema import TIMESTAMP
from governance.bulk.sections import Section
from governance.changelog import insert_objects, insert_rows
from governance.models import ChangeLogEntry
from governance.services import grant_creator_many
from sources.models import DataSource

from ..models import Classification, Field, Table, Tag, TagCategory

TABLE_CHUNK = 500

# key: (type, option); the JSON keys and what the models hold.
TABLE_VALUES = {
    "kind": ("choice", Table.Kind.values),
    "description": ("text", None),
    "comment": ("text", None),
    "data_domain": ("text", 100),
    "purpose": ("text", None),
    "legal_basis": ("choice", ["", *Table.LegalBasis.values]),
    "retention_days": ("integer", None),
    "residency_region": ("text", 50),
    "criticality": ("choice", ["", *Table.Criticality.values]),
    "pci_scope": ("boolean", None),
    "view_definition": ("text", None),
}
FIELD_VALUES = {
    "position": ("integer", None),
    "data_type": ("text", 30),
    "native_type": ("text", 200),
    "nullable": ("boolean", None),
    "default": ("nulltext", None),
    "is_primary_key": ("boolean", None),
    "foreign_key": ("text", 800),
    "description": ("text", None),
    "comment": ("text", None),
}
CLASSIFICATION_KEYS = {
    "rule",
    "tag",
    "status",
    "method",
    "hit_ratio",
    "sample_size",
    "decided_by",
    "decided_at",
}
CLASSIFICATION_STATUSES = frozenset(Classification.Status.values)
CLASSIFICATION_VALUES = ("tag_id", "status", "method", "hit_ratio", "sample_size", "decided_by_id")
TABLE_KEYS = {"source", "schema", "name", "owner", "tags", "fields", *TABLE_VALUES}
FIELD_KEYS = {"name", "tags", "classifications", *FIELD_VALUES}
FIELD_DEFAULTS = {key: Field._meta.get_field(key).get_default() for key in FIELD_VALUES}
FIELD_COLUMNS = ("table_id", "name", *FIELD_VALUES, "removed", "created_at", "updated_at")
CHUNK = 500
EXPORT_TABLE_KEYS = (
    "kind",
    "description",
    "comment",
    "owner",
    "tags",
    *Table.GOVERNANCE_ATTRS,
    "view_definition",
)
EXPORT_TABLE_COLUMNS = [k for k in EXPORT_TABLE_KEYS if k not in ("owner", "tags")]
EXPORT_FIELD_COLUMNS = (
    "position",
    "data_type",
    "native_type",
    "nullable",
    "default",
    "is_primary_key",
    "foreign_key",
    "description",
    "comment",
)


_text = {"type": "string"}
_tags = {
    "type": "array",
    "items": {"type": "string", "pattern": r"^[^.]+\..+$"},
    "description": 'Tags as "Category.Name"; the list replaces the object\'s tags.',
}

CLASSIFICATION = {
    "type": "object",
    "required": ["rule", "tag"],
    "additionalProperties": False,
    "properties": {
        "rule": {"type": "string", "maxLength": 64},
        "tag": {"type": "string"},
        "status": {"enum": list(Classification.Status.values)},
        "method": {"type": "string", "maxLength": 20},
        "hit_ratio": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "sample_size": {"type": "integer", "minimum": 0},
        "decided_by": {"type": ["string", "null"]},
        "decided_at": {"type": ["string", "null"], "readOnly": True},
    },
}

FIELD = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 500},
        "position": {"type": "integer", "minimum": 0},
        "data_type": {"type": "string", "maxLength": 30},
        "native_type": {"type": "string", "maxLength": 200},
        "nullable": {"type": "boolean"},
        "default": {"type": ["string", "null"]},
        "is_primary_key": {"type": "boolean"},
        "foreign_key": {"type": "string", "maxLength": 800},
        "description": _text,
        "comment": _text,
        "tags": _tags,
        "classifications": {"type": "array", "items": CLASSIFICATION},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    },
}

TABLE = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "source": {
            "type": ["string", "null"],
            "description": "The data source's name; null or absent for a manual table.",
        },
        "schema": {"type": "string", "maxLength": 255},
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "kind": {"enum": list(Table.Kind.values)},
        "description": _text,
        "comment": _text,
        "owner": {"type": ["string", "null"], "description": "A username."},
        "tags": _tags,
        "data_domain": {"type": "string", "maxLength": 100},
        "purpose": _text,
        "legal_basis": {"enum": ["", *Table.LegalBasis.values]},
        "retention_days": {"type": ["integer", "null"], "minimum": 0},
        "residency_region": {"type": "string", "maxLength": 50},
        "criticality": {"enum": ["", *Table.Criticality.values]},
        "pci_scope": {"type": "boolean"},
        "view_definition": _text,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "fields": {"type": "array", "items": FIELD},
    },
}


class NewField:
    """A field to create: inserted as a plain row, its id set afterwards."""

    __slots__ = ("table", "name", "values", "logged", "pk")

    def __init__(self, table, name, values, logged):
        self.table, self.name, self.values, self.logged, self.pk = table, name, values, logged, None


class CatalogSection(Section):
    name = "catalog"
    schema = {"tables": {"type": "array", "items": TABLE}}
    counts = ("tables", "fields")

    # --- import ------------------------------------------------------------------------

    def plan(self):
        self.load_vocabulary()
        self.plan_tables()

    def apply(self):
        self.apply_tables()

    def finish(self):
        self.run.counts["tags"] = {"created": len(self.missing_tags)}

    def tag_names(self, rec, key="tags"):
        value = rec.get(key)
        if value is None:
            return [] if key in rec else None
        if isinstance(value, str):
            value = split_list(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return self.run.bad(rec, key, 'expected a list of "Category.Name" tags')
        names, exclusive = [], {}
        for name in value:
            category, dot, tag = name.partition(".")
            if not dot or not category or not tag:
                self.run.bad(rec, key, f'{name!r} is not a "Category.Name" tag')
                continue
            if name not in self.tags:
                if not self.may_add_tags:
                    self.run.bad(rec, key, f"no tag {name!r} (you may not create tags)")
                    continue
                self.missing_tags.add(name)
            if category in self.exclusive and exclusive.setdefault(category, name) != name:
                self.run.bad(
                    rec,
                    key,
                    f"{exclusive[category]} and {name} are both in the mutually "
                    f"exclusive category {category}",
                )
            if name not in names:
                names.append(name)
        return frozenset(names)

    def username(self, rec, key):
        value = rec.get(key)
        if value in (None, ""):
            return None
        if not isinstance(value, str) or value not in self.users:
            return self.run.bad(rec, key, f"no user {value!r}")
        return self.users[value]

    def load_vocabulary(self):
        # A source the user may not view is named like one that does not exist.
        visible = DataSource.objects.restrict(self.run.user, "view")
        self.sources = dict(visible.values_list("name", "pk"))
        self.users = dict(get_user_model().objects.values_list("username", "pk"))
        self.usernames = {pk: name for name, pk in self.users.items()}
        self.tags = {
            f"{category}.{name}": pk
            for pk, category, name in Tag.objects.values_list("pk", "category__name", "name")
        }
        self.tag_by_id = {pk: name for name, pk in self.tags.items()}
        self.categories = dict(TagCategory.objects.values_list("name", "pk"))
        self.exclusive = set(
            TagCategory.objects.filter(mutually_exclusive=True).values_list("name", flat=True)
        )
        self.may_add_tags = self.run.user.has_perm("catalog.add_tag") and (
            self.run.user.has_perm("catalog.add_tagcategory")
        )
        self.missing_tags = set()

    def plan_tables(self):
        """Table-level values, fully qualified names and which tables exist already."""
        self.by_fqn = {}
        for rec in self.run.doc.tables:
            self.run.unknown_keys(rec, TABLE_KEYS)
            name = self.run.coerce(rec, "name", "text", 255) if "name" in rec else ""
            if name in ("", None):
                self.run.bad(rec, "name", "a table needs a name")
                name = INVALID
            schema = self.run.coerce(rec, "schema", "text", 255) if "schema" in rec else ""
            source_name = (
                self.run.coerce(rec, "source", "nulltext", 200) if "source" in rec else None
            )
            source_id = None
            if source_name:
                source_id = self.sources.get(source_name)
                if source_id is None:
                    self.run.bad(rec, "source", f"no data source named {source_name!r}")
            plan = {
                "values": self.run.values(rec, TABLE_VALUES),
                "owner": self.username(rec, "owner") if "owner" in rec else SKIP,
                "tags": self.tag_names(rec),
                "source_id": source_id,
                "id": None,
            }
            rec["_plan"] = plan
            if INVALID in (name, schema, source_name) or (source_name and source_id is None):
                continue
            fqn = Table.make_fqn(source_name, schema, name)
            if len(fqn) > 800:
                self.run.bad(rec, "name", "the fully qualified name is longer than 800 characters")
                continue
            plan.update(fqn=fqn, schema=schema, name=name)
            first = self.by_fqn.get(fqn)
            if first is not None:
                self.run.bad(
                    rec, "name", f"the table {fqn} appears twice (first at {first['_loc']})"
                )
                continue
            self.by_fqn[fqn] = rec
        self.table_ids = {}  # fqn -> id, for tables in the file and tables lineage names
        fqns = list(self.by_fqn)
        for start in range(0, len(fqns), 2000):
            chunk = fqns[start : start + 2000]
            for fqn, pk in Table.objects.filter(fqn__in=chunk).values_list("fqn", "pk"):
                self.table_ids[fqn] = pk
                self.by_fqn[fqn]["_plan"]["id"] = pk
        if self.run.mode == CREATE:
            for fqn, rec in self.by_fqn.items():
                if rec["_plan"]["id"] is not None:
                    self.run.bad(
                        rec,
                        "name",
                        f"the table {fqn} already exists; create never updates (use upsert)",
                    )

    def check_permissions(self):
        user = self.run.user
        if user.is_superuser:
            return
        existing = [rec["_plan"]["id"] for rec in self.by_fqn.values() if rec["_plan"]["id"]]
        changeable = self.changeable(existing)
        sources = set(DataSource.objects.restrict(user, "change").values_list("pk", flat=True))
        may_add_manual = user.has_perm("catalog.add_table")
        for fqn, rec in self.by_fqn.items():
            plan = rec["_plan"]
            if plan["id"] is not None:
                if plan["id"] not in changeable:
                    self.run.denied.append(f"table {fqn}")
            elif plan["source_id"] is not None:
                if plan["source_id"] not in sources:
                    self.run.denied.append(f"table {fqn} (source)")
            elif not may_add_manual:
                self.run.denied.append(f"table {fqn} (manual tables)")

    def changeable(self, ids):
        """The ids among `ids` of the tables the user may change."""
        ids, found = sorted(set(ids)), set()
        allowed = Table.objects.restrict(self.run.user, "change")
        for start in range(0, len(ids), 2000):
            chunk = ids[start : start + 2000]
            found.update(allowed.filter(pk__in=chunk).values_list("pk", flat=True))
        return found

    def create_tags(self):
        """Create the tags (and categories) the file names that do not exist yet."""
        for name in sorted(n for n in self.missing_tags if n not in self.tags):
            category_name, _, tag_name = name.partition(".")
            if category_name not in self.categories:
                category = TagCategory.objects.create(name=category_name, owner=None)
                changelog.record_many(TagCategory, [(category, ChangeLogEntry.Action.CREATE, None)])
                self.categories[category_name] = category.pk
            tag = Tag.objects.create(category_id=self.categories[category_name], name=tag_name)
            changelog.record_many(Tag, [(tag, ChangeLogEntry.Action.CREATE, None)])
            self.tags[name] = tag.pk
            self.tag_by_id[tag.pk] = name

    # --- tables and fields -------------------------------------------------------------

    def apply_tables(self):
        records = list(self.by_fqn.values())
        total = max(len(records), 1)
        for start in range(0, len(records), TABLE_CHUNK):
            self.apply_table_chunk(records[start : start + TABLE_CHUNK])
            done = min(start + TABLE_CHUNK, len(records))
            self.run.progress(10 + 70 * done / total, f"tables {done} of {len(records)}")

    def apply_table_chunk(self, records):
        ids = [rec["_plan"]["id"] for rec in records if rec["_plan"]["id"]]
        current = {
            row["id"]: row
            for row in Table.objects.filter(pk__in=ids).values("id", "owner_id", *TABLE_VALUES)
        }
        current_tags = defaultdict(set)
        through = Table.tags.through
        for table_id, tag_id in through.objects.filter(table_id__in=ids).values_list(
            "table_id", "tag_id"
        ):
            current_tags[table_id].add(self.tag_by_id[tag_id])
        fields = defaultdict(dict)
        for row in Field.objects.filter(table_id__in=ids).values(
            "id", "table_id", "name", *FIELD_VALUES
        ):
            fields[row["table_id"]][row["name"]] = row
        field_tags = defaultdict(set)
        for field_id, tag_id in Field.tags.through.objects.filter(
            field__table_id__in=ids
        ).values_list("field_id", "tag_id"):
            field_tags[field_id].add(self.tag_by_id[tag_id])
        rules = defaultdict(dict)
        for row in Classification.objects.filter(field__table_id__in=ids).values(
            "id", "field_id", "rule", *CLASSIFICATION_VALUES
        ):
            rules[row["field_id"]][row["rule"]] = row

        new_tables, table_updates, new_fields, field_updates = [], [], [], []
        tag_changes = []  # (model, object id or the new object, old set, new set)
        new_rules, rule_updates = [], []
        for rec in records:
            plan = rec["_plan"]
            table_id = plan["id"]
            if table_id is None:
                table = Table(
                    source_id=plan["source_id"],
                    schema=plan["schema"],
                    name=plan["name"],
                    fqn=plan["fqn"],
                    owner_id=None if plan["owner"] is SKIP else plan["owner"],
                    **plan["values"],
                )
                new_tables.append(table)
                if plan["tags"]:
                    tag_changes.append((Table, table, set(), plan["tags"]))
                self.run.counts["tables"]["created"] += 1
                existing_fields, row = {}, None
            else:
                row = current[table_id]
                # Enough of a table for str(field) in the change log, without a query.
                table = Table(pk=table_id, fqn=plan["fqn"], source_id=plan["source_id"])
                changed = {k: v for k, v in plan["values"].items() if row[k] != v}
                if plan["owner"] is not SKIP and plan["owner"] != row["owner_id"]:
                    changed["owner_id"] = plan["owner"]
                tags_changed = plan["tags"] is not None and plan["tags"] != current_tags[table_id]
                if tags_changed:
                    tag_changes.append((Table, table_id, current_tags[table_id], plan["tags"]))
                if changed or tags_changed:
                    table_updates.append((table_id, changed))
                    self.run.counts["tables"]["updated"] += 1
                else:
                    self.run.counts["tables"]["unchanged"] += 1
                existing_fields = fields[table_id]
            seen = {}
            for position, item in enumerate(rec["fields"], start=1):
                self.run.unknown_keys(item, FIELD_KEYS | {"created_at", "updated_at"})
                name = self.run.coerce(item, "name", "text", 500) if "name" in item else ""
                if name == "":
                    self.run.bad(item, "name", "a field needs a name")
                values = self.run.values(item, FIELD_VALUES)
                tags = self.tag_names(item)
                wanted_rules = self.classifications(item)
                if name in ("", INVALID):
                    continue
                if name in seen:
                    self.run.bad(
                        item, "name", f"the field {name} appears twice (first at {seen[name]})"
                    )
                    continue
                seen[name] = item["_loc"]
                existing = existing_fields.get(name)
                if existing is None:
                    values.setdefault("position", position)
                    field = NewField(table, name, values, logged=table_id is not None)
                    new_fields.append(field)
                    if tags:
                        tag_changes.append((Field, field, set(), tags))
                    for rule in wanted_rules.values():
                        new_rules.append((field, rule))
                    self.run.counts["fields"]["created"] += 1
                    continue
                if self.run.mode == CREATE:
                    continue  # its table exists: already reported
                changed = {k: v for k, v in values.items() if existing[k] != v}
                tags_changed = tags is not None and tags != field_tags[existing["id"]]
                if tags_changed:
                    tag_changes.append((Field, existing["id"], field_tags[existing["id"]], tags))
                rules_changed = False
                for rule_name, rule in wanted_rules.items():
                    have = rules[existing["id"]].get(rule_name)
                    if have is None:
                        new_rules.append((existing["id"], rule))
                        rules_changed = True
                    elif any(have[k] != rule[k] for k in CLASSIFICATION_VALUES):
                        rule_updates.append((have["id"], rule, have))
                        rules_changed = True
                if changed or tags_changed or rules_changed:
                    field_updates.append((existing["id"], changed))
                    self.run.counts["fields"]["updated"] += 1
                else:
                    self.run.counts["fields"]["unchanged"] += 1
        if self.run.errors or self.run.dry_run:
            return
        self.write_chunk(
            new_tables,
            table_updates,
            new_fields,
            field_updates,
            tag_changes,
            new_rules,
            rule_updates,
        )

    def classifications(self, item):
        value = item.get("classifications")
        if value in (None, ""):
            return {}
        if not isinstance(value, list):
            self.run.bad(item, "classifications", "expected a list of classifications")
            return {}
        wanted = {}
        statuses = CLASSIFICATION_STATUSES
        for index, entry in enumerate(value):
            where = {**item, "_loc": f"{item['_loc']}/classifications/{index}"}
            if "_row" in item:
                where["_loc"] = item["_loc"]
            if not isinstance(entry, dict) or not isinstance(entry.get("rule"), str):
                self.run.bad(where, "classifications", "each classification needs a rule")
                continue
            unknown = set(entry) - CLASSIFICATION_KEYS
            if unknown:
                self.run.bad(where, "classifications", f"unknown keys {', '.join(sorted(unknown))}")
                continue
            rule = entry["rule"][:64]
            tag = entry.get("tag")
            status = entry.get("status", "suggested")
            if tag not in self.tags and not (
                isinstance(tag, str) and "." in tag and self.may_add_tags
            ):
                self.run.bad(where, "classifications", f"classification {rule}: no tag {tag!r}")
                continue
            if tag not in self.tags:
                self.missing_tags.add(tag)
            if status not in statuses:
                self.run.bad(
                    where, "classifications", f"classification {rule}: bad status {status!r}"
                )
                continue
            hit_ratio = entry.get("hit_ratio")
            sample_size = entry.get("sample_size", 0)
            if hit_ratio is not None and (
                isinstance(hit_ratio, bool) or not isinstance(hit_ratio, int | float)
            ):
                self.run.bad(where, "classifications", f"classification {rule}: bad hit_ratio")
                continue
            if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 0:
                self.run.bad(where, "classifications", f"classification {rule}: bad sample_size")
                continue
            decided_by = entry.get("decided_by")
            if decided_by not in (None, "") and decided_by not in self.users:
                self.run.bad(
                    where, "classifications", f"classification {rule}: no user {decided_by!r}"
                )
                continue
            method = entry.get("method", "import")
            if not isinstance(method, str) or len(method) > 20:
                self.run.bad(where, "classifications", f"classification {rule}: bad method")
                continue
            wanted[rule] = {
                "rule": rule,
                "tag": tag,
                "tag_id": self.tags.get(tag),
                "status": status,
                "method": method,
                "hit_ratio": None if hit_ratio is None else float(hit_ratio),
                "sample_size": sample_size,
                "decided_by_id": self.users.get(decided_by) if decided_by else None,
            }
        return wanted

    def write_chunk(
        self,
        new_tables,
        table_updates,
        new_fields,
        field_updates,
        tag_changes,
        new_rules,
        rule_updates,
    ):
        Action = ChangeLogEntry.Action
        self.create_tags()
        insert_objects(new_tables)
        for table in new_tables:
            self.table_ids[table.fqn] = table.pk
        grant_creator_many(self.run.user, new_tables)  # manual tables carry their own grants
        changes = [(t, Action.CREATE, None) for t in new_tables]
        if table_updates:
            changes += self.run.update_rows(Table, table_updates)
        changelog.record_many(Table, changes)

        rows = [
            (
                f.table.pk,
                f.name,
                *(f.values.get(k, FIELD_DEFAULTS[k]) for k in FIELD_VALUES),
                False,
                self.run.now,
                self.run.now,
            )
            for f in new_fields
        ]
        ids = insert_rows(Field, FIELD_COLUMNS, rows, returning_ids=True)
        for field, pk in zip(new_fields, ids, strict=True):
            field.pk = pk
        # Fields created with their table are covered by the table's entry (as in a scan);
        # a field added to an existing table gets its own.
        changes = [
            (Field(pk=f.pk, table=f.table, name=f.name, **f.values), Action.CREATE, None)
            for f in new_fields
            if f.logged
        ]
        if field_updates:
            changes += self.run.update_rows(Field, field_updates, ["table"])
        for start in range(0, len(changes), 5000):
            changelog.record_many(Field, changes[start : start + 5000])

        self.write_tags(tag_changes)
        insert_objects(
            [
                Classification(
                    field_id=field if isinstance(field, int) else field.pk,
                    rule=rule["rule"],
                    tag_id=self.tags[rule["tag"]],
                    method=rule["method"],
                    hit_ratio=rule["hit_ratio"],
                    sample_size=rule["sample_size"],
                    status=rule["status"],
                    decided_by_id=rule["decided_by_id"],
                    decided_at=self.run.now if rule["status"] != "suggested" else None,
                )
                for field, rule in new_rules
            ]
        )
        if rule_updates:
            loaded = Classification.objects.in_bulk([pk for pk, _, _ in rule_updates])
            for pk, rule, have in rule_updates:
                obj = loaded[pk]
                obj.tag_id = self.tags[rule["tag"]]
                for key in ("status", "method", "hit_ratio", "sample_size", "decided_by_id"):
                    setattr(obj, key, rule[key])
                if rule["status"] != have["status"]:
                    obj.decided_at = self.run.now if rule["status"] != "suggested" else None
            Classification.objects.bulk_update(
                loaded.values(),
                ["tag", "status", "method", "hit_ratio", "sample_size", "decided_by", "decided_at"],
            )

    def write_tags(self, tag_changes):
        rows = {Table: [], Field: []}
        removed = {Table: [], Field: []}
        for model, obj, old, new in tag_changes:
            pk = obj if isinstance(obj, int) else obj.pk
            key = "table_id" if model is Table else "field_id"
            through = model.tags.through
            rows[model] += [through(**{key: pk, "tag_id": self.tags[n]}) for n in new - old]
            removed[model] += [(pk, self.tags[n]) for n in old - new]
        for model in (Table, Field):
            through = model.tags.through
            key = "table_id" if model is Table else "field_id"
            insert_objects(rows[model])
            by_object = defaultdict(list)
            for pk, tag_id in removed[model]:
                by_object[pk].append(tag_id)
            for pk, tag_ids in by_object.items():
                through.objects.filter(**{key: pk, "tag_id__in": tag_ids}).delete()

    # --- export ------------------------------------------------------------------------

    def export(self):
        run = self.run
        self.tables = export_queryset(run.user, **run.filters)
        ids = list(self.tables.order_by("fqn").values_list("pk", flat=True))
        run.summary["tables"] = len(ids)
        return {"tables": iter_tables(ids, run.progress)}


def iso_time(value):
    return value.isoformat() if value else None


def export_queryset(user, *, source=None, schema=None, tag=None, updated_since=None, selected=None):
    tables = Table.objects.restrict(user, "view").filter(removed=False)
    if selected is not None:  # a queryset of chosen tables (the admin action)
        tables = tables.filter(pk__in=selected.values("pk"))
    if source:
        tables = tables.filter(source__name=source)
    if schema:
        tables = tables.filter(schema=schema)
    if tag:
        category, dot, name = tag.partition(".")
        if not dot:
            raise ExportRefused(f'tag {tag!r} is not "Category.Name"')
        found = Tag.objects.filter(category__name=category, name=name).first()
        if found is None:
            raise ExportRefused(f"no tag {tag!r}")
        tables = tables.filter(
            Q(pk__in=Table.tags.through.objects.filter(tag=found).values("table_id"))
            | Q(pk__in=Field.objects.filter(tags=found, removed=False).values("table_id"))
        )
    if updated_since:
        tables = tables.filter(updated_at__gte=updated_since)
    return tables


def iter_tables(ids, progress=None):
    """Exported table dicts, in fully-qualified-name order, a chunk of tables at a time."""
    tag_names = {
        pk: f"{category}.{name}"
        for pk, category, name in Tag.objects.values_list("pk", "category__name", "name")
    }
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        table_tags = defaultdict(list)
        for table_id, tag_id in Table.tags.through.objects.filter(table_id__in=chunk).values_list(
            "table_id", "tag_id"
        ):
            table_tags[table_id].append(tag_names[tag_id])
        fields = defaultdict(list)
        field_rows = (
            Field.objects.filter(table_id__in=chunk, removed=False)
            .order_by("table_id", "position", "name")
            .values("id", "table_id", "name", *EXPORT_FIELD_COLUMNS, "created_at", "updated_at")
        )
        for row in field_rows:
            fields[row["table_id"]].append(row)
        field_tags = defaultdict(list)
        for field_id, tag_id in Field.tags.through.objects.filter(
            field__table_id__in=chunk, field__removed=False
        ).values_list("field_id", "tag_id"):
            field_tags[field_id].append(tag_names[tag_id])
        decisions = defaultdict(list)
        for row in (
            Classification.objects.filter(field__table_id__in=chunk, field__removed=False)
            .order_by("field_id", "rule")
            .values(
                "field_id",
                "rule",
                "tag_id",
                "status",
                "method",
                "hit_ratio",
                "sample_size",
                "decided_by__username",
                "decided_at",
            )
        ):
            decisions[row["field_id"]].append(
                {
                    "rule": row["rule"],
                    "tag": tag_names[row["tag_id"]],
                    "status": row["status"],
                    "method": row["method"],
                    "hit_ratio": row["hit_ratio"],
                    "sample_size": row["sample_size"],
                    "decided_by": row["decided_by__username"],
                    "decided_at": iso_time(row["decided_at"]),
                }
            )
        rows = (
            Table.objects.filter(pk__in=chunk)
            .order_by("fqn")
            .values(
                "id",
                "source__name",
                "schema",
                "name",
                "owner__username",
                "created_at",
                "updated_at",
                *EXPORT_TABLE_COLUMNS,
            )
        )
        for row in rows:
            table = {"source": row["source__name"], "schema": row["schema"], "name": row["name"]}
            for key in EXPORT_TABLE_KEYS:
                if key == "owner":
                    table["owner"] = row["owner__username"]
                elif key == "tags":
                    table["tags"] = sorted(table_tags[row["id"]])
                else:
                    table[key] = row[key]
            table["created_at"] = iso_time(row["created_at"])
            table["updated_at"] = iso_time(row["updated_at"])
            table["fields"] = [
                {
                    "name": item["name"],
                    **{key: item[key] for key in EXPORT_FIELD_COLUMNS},
                    "tags": sorted(field_tags[item["id"]]),
                    "classifications": decisions[item["id"]],
                    "created_at": iso_time(item["created_at"]),
                    "updated_at": iso_time(item["updated_at"]),
                }
                for item in fields[row["id"]]
            ]
            yield table
        if progress is not None:
            progress(min(start + CHUNK, len(ids)), len(ids))
