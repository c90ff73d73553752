"""The one catalog import: tables, fields, tags, owners, classification decisions and
lineage from a JSON, YAML, CSV or XLSX file, in one transaction.

Tables are matched by fully qualified name (source + schema + name), fields by name within
their table, edges by (upstream, downstream) table. `create` refuses anything that already
exists; `upsert` updates what differs and leaves the rest untouched (an unchanged object is
not written and gets no change-log entry). Nothing is deleted. Every error of the file is
collected with its location; the transaction is rolled back when there is any.

Permissions: a new table needs the change permission on its source (a manual table: the
global add permission), an existing table the change permission on it, an edge the change
permission on its downstream table; a file touching anything else is refused as a whole.
Lineage keeps the origin and status the file gives, so its rows are written here in bulk
rather than through lineage.services.record_edges, which decides them itself.
"""

import time
from collections import defaultdict

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import changelog
from governance.changelog import insert_objects, insert_rows
from governance.models import ChangeLogEntry
from governance.services import grant_creator
from sources.models import DataSource

from ..models import Classification, Field, Table, Tag, TagCategory
from . import formats
from .formats import FileRejected, error

CREATE, UPSERT = "create", "upsert"
MODES = (CREATE, UPSERT)
TABLE_CHUNK = 500
EDGE_CHUNK = 2000
TRUE = {"true", "yes", "y", "1", "t"}
FALSE = {"false", "no", "n", "0", "f"}
INVALID = object()
SKIP = object()

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
EDGE_KEYS = {"source", "target", "origin", "status", "confidence", "fields"}
EDGE_FIELD_KEYS = {"source", "target", "transformation"}
READ_ONLY = formats.READ_ONLY_KEYS | {"_loc"}


FIELD_DEFAULTS = {key: Field._meta.get_field(key).get_default() for key in FIELD_VALUES}
FIELD_COLUMNS = ("table_id", "name", *FIELD_VALUES, "removed", "created_at", "updated_at")


class NewField:
    """A field to create: inserted as a plain row, its id set afterwards."""

    __slots__ = ("table", "name", "values", "logged", "pk")

    def __init__(self, table, name, values, logged):
        self.table, self.name, self.values, self.logged, self.pk = table, name, values, logged, None


class ImportRejected(Exception):
    """The file is refused: 400 with every error, or 403 naming the objects."""

    def __init__(self, detail, errors=(), status=400, objects=()):
        super().__init__(detail)
        self.detail, self.errors, self.status, self.objects = detail, list(errors), status, objects

    def as_dict(self):
        cap = getattr_setting("BULK_IMPORT_MAX_ERRORS", 1000)
        data = {"detail": self.detail, "errors": self.errors[:cap]}
        data["error_count"] = len(self.errors)
        if self.objects:
            data["objects"] = list(self.objects)
        return data


def getattr_setting(name, default):
    return formats.limit(name, default)


def catalog_import(*, data, user, format=None, mode=CREATE, dry_run=False, progress=None):
    """Import a catalog file (bytes, or a binary file read as it is parsed). Returns the
    counts; raises ImportRejected."""
    if mode not in MODES:
        raise ImportRejected(f"unknown mode {mode!r}; choose create or upsert")
    progress = progress or (lambda percent, message: None)
    started = time.monotonic()
    try:
        doc = formats.read(data, format)
    except FileRejected as exc:
        raise ImportRejected(exc.detail, exc.errors) from exc
    del data
    progress(10, f"read {len(doc.tables)} tables and {len(doc.lineage)} edges")
    run = _Import(doc, user, mode, dry_run, progress)
    try:
        counts = run.execute()
    except IntegrityError as exc:
        raise ImportRejected(
            "the catalog changed while the file was being imported (another import or a scan "
            "wrote the same objects); nothing was written, import the file again",
            status=409,
        ) from exc
    return {
        "format": doc.format,
        "mode": mode,
        "dry_run": dry_run,
        "counts": counts,
        "errors": [],
        "seconds": round(time.monotonic() - started, 3),
    }


def _counter():
    return {"created": 0, "updated": 0, "unchanged": 0}


class _Import:
    def __init__(self, doc, user, mode, dry_run, progress):
        self.doc, self.user, self.mode, self.dry_run = doc, user, mode, dry_run
        self.progress = progress
        self.errors = list(doc.errors)
        self.denied = []
        self.counts = {
            "tables": _counter(),
            "fields": _counter(),
            "edges": _counter(),
            "tags": {"created": 0},
        }
        self.now = timezone.now()

    # --- values ------------------------------------------------------------------------

    def bad(self, rec, key, message):
        names = rec.get("_names") or {}
        if "_row" in rec:
            self.errors.append(error(rec["_loc"], names.get(key, key), message, rec["_row"]))
        else:
            location = f"{rec['_loc']}/{key}" if key else rec["_loc"]
            self.errors.append(error(location, key, message))
        return INVALID

    def unknown_keys(self, rec, allowed):
        if "_names" in rec:
            return  # flat files: the header was checked
        for key in rec:
            if key not in allowed and key not in READ_ONLY:
                self.bad(rec, key, "unknown key")

    def coerce(self, rec, key, kind, option):
        value = rec[key]
        flat = "_row" in rec
        if kind in ("text", "nulltext"):
            if value is None:
                return None if kind == "nulltext" else ""
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                return self.bad(rec, key, "expected text")
            value = str(value)
            if option and len(value) > option:
                return self.bad(rec, key, f"longer than {option} characters")
            return value
        if flat and value == "":
            if kind == "choice" and "" in option:
                return ""
            return None if kind in ("integer", "number") else SKIP
        if kind == "choice":
            if value is None:
                value = ""
            if value not in option:
                return self.bad(
                    rec, key, f"{value!r} is not one of {', '.join(repr(o) for o in option)}"
                )
            return value
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
                return value.strip().lower() in TRUE
            return self.bad(rec, key, f"{value!r} is not true or false")
        if kind == "integer":
            if value is None:
                return None
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return self.bad(rec, key, f"{value!r} is not a whole number of 0 or more")
            return value
        if kind == "number":
            if value is None:
                return None
            try:
                number = float(value) if not isinstance(value, bool) else None
            except (TypeError, ValueError):
                number = None
            if number is None or not (0 <= number <= 1):
                return self.bad(rec, key, f"{value!r} is not a number between 0 and 1")
            return number
        raise ValueError(kind)

    def values(self, rec, spec):
        result = {}
        for key, (kind, option) in spec.items():
            if key in rec:
                value = self.coerce(rec, key, kind, option)
                if value is SKIP or (value is None and key == "position"):
                    continue
                result[key] = value
        return result

    def tag_names(self, rec, key="tags"):
        value = rec.get(key)
        if value is None:
            return [] if key in rec else None
        if isinstance(value, str):
            value = formats._split_list(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return self.bad(rec, key, 'expected a list of "Category.Name" tags')
        names, exclusive = [], {}
        for name in value:
            category, dot, tag = name.partition(".")
            if not dot or not category or not tag:
                self.bad(rec, key, f'{name!r} is not a "Category.Name" tag')
                continue
            if name not in self.tags:
                if not self.may_add_tags:
                    self.bad(rec, key, f"no tag {name!r} (you may not create tags)")
                    continue
                self.missing_tags.add(name)
            if category in self.exclusive and exclusive.setdefault(category, name) != name:
                self.bad(
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
            return self.bad(rec, key, f"no user {value!r}")
        return self.users[value]

    # --- the run -----------------------------------------------------------------------

    def execute(self):
        self.load_vocabulary()
        self.plan_tables()
        self.plan_edges()
        self.check_permissions()
        if self.denied:
            names = sorted(set(self.denied))
            raise ImportRejected(
                f"you may not change {len(names)} object(s) this file touches: "
                + ", ".join(names[:20])
                + (" ..." if len(names) > 20 else ""),
                self.errors,
                status=403,
                objects=names,
            )
        # With errors already found nothing is written, but every row is still checked.
        with transaction.atomic():
            self.apply_tables()
            self.apply_edges()
            if self.errors:
                raise ImportRejected(f"{len(self.errors)} error(s) in the file", self.errors)
        self.counts["tags"]["created"] = len(self.missing_tags)
        return self.counts

    def load_vocabulary(self):
        self.sources = dict(DataSource.objects.values_list("name", "pk"))
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
        self.may_add_tags = self.user.has_perm("catalog.add_tag") and (
            self.user.has_perm("catalog.add_tagcategory")
        )
        self.missing_tags = set()

    def plan_tables(self):
        """Table-level values, fully qualified names and which tables exist already."""
        self.by_fqn = {}
        for rec in self.doc.tables:
            self.unknown_keys(rec, TABLE_KEYS)
            name = self.coerce(rec, "name", "text", 255) if "name" in rec else ""
            if name in ("", None):
                self.bad(rec, "name", "a table needs a name")
                name = INVALID
            schema = self.coerce(rec, "schema", "text", 255) if "schema" in rec else ""
            source_name = self.coerce(rec, "source", "nulltext", 200) if "source" in rec else None
            source_id = None
            if source_name:
                source_id = self.sources.get(source_name)
                if source_id is None:
                    self.bad(rec, "source", f"no data source named {source_name!r}")
            plan = {
                "values": self.values(rec, TABLE_VALUES),
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
                self.bad(rec, "name", "the fully qualified name is longer than 800 characters")
                continue
            plan.update(fqn=fqn, schema=schema, name=name)
            first = self.by_fqn.get(fqn)
            if first is not None:
                self.bad(rec, "name", f"the table {fqn} appears twice (first at {first['_loc']})")
                continue
            self.by_fqn[fqn] = rec
        self.table_ids = {}  # fqn -> id, for tables in the file and tables lineage names
        fqns = list(self.by_fqn)
        for start in range(0, len(fqns), 2000):
            chunk = fqns[start : start + 2000]
            for fqn, pk in Table.objects.filter(fqn__in=chunk).values_list("fqn", "pk"):
                self.table_ids[fqn] = pk
                self.by_fqn[fqn]["_plan"]["id"] = pk
        if self.mode == CREATE:
            for fqn, rec in self.by_fqn.items():
                if rec["_plan"]["id"] is not None:
                    self.bad(
                        rec,
                        "name",
                        f"the table {fqn} already exists; create never updates (use upsert)",
                    )

    def plan_edges(self):
        Origin = apps.get_model("lineage", "LineageEdge").origin.field.choices
        origins = [value for value, _ in Origin]
        elsewhere = set()
        pairs = {}
        for rec in self.doc.lineage:
            self.unknown_keys(rec, EDGE_KEYS)
            ends = []
            for key in ("source", "target"):
                value = self.coerce(rec, key, "text", 800) if key in rec else ""
                if value in ("", INVALID):
                    if value == "":
                        self.bad(rec, key, "the fully qualified name of a table is required")
                    ends.append(None)
                    continue
                ends.append(value)
                if value not in self.by_fqn:
                    elsewhere.add(value)
            origin = self.coerce(rec, "origin", "choice", origins) if "origin" in rec else SKIP
            origin = "manual" if origin is SKIP else origin
            status = (
                self.coerce(rec, "status", "choice", ["approved", "pending", "rejected"])
                if "status" in rec
                else SKIP
            )
            if status is SKIP:
                status = "approved" if origin == "manual" else "pending"
            confidence = (
                self.coerce(rec, "confidence", "number", None) if "confidence" in rec else None
            )
            field_pairs = []
            for item in rec["fields"]:
                self.unknown_keys(item, EDGE_FIELD_KEYS)
                up = self.coerce(item, "source", "text", 500) if "source" in item else ""
                down = self.coerce(item, "target", "text", 500) if "target" in item else ""
                for key, value in (("source", up), ("target", down)):
                    if value == "":
                        self.bad(item, key, "a field name is required")
                transformation = (
                    self.coerce(item, "transformation", "text", None)
                    if "transformation" in item
                    else ""
                )
                if INVALID in (up, down, transformation) or "" in (up, down):
                    continue
                if (up, down) in {(u, d) for u, d, _, _ in field_pairs}:
                    self.bad(item, "target", f"the field edge {up} -> {down} appears twice")
                    continue
                field_pairs.append((up, down, transformation, item))
            rec["_plan"] = {
                "source": ends[0],
                "target": ends[1],
                "origin": origin,
                "status": status,
                "confidence": 1.0 if confidence is None else confidence,
                "fields": field_pairs,
            }
            if None in ends or INVALID in (origin, status, confidence):
                rec["_plan"] = None
                continue
            if ends[0] == ends[1]:
                self.bad(rec, "target", f"a table cannot feed itself: {ends[0]}")
                rec["_plan"] = None
                continue
            pair = tuple(ends)
            if pair in pairs:
                self.bad(
                    rec,
                    "target",
                    f"the edge {ends[0]} -> {ends[1]} appears twice "
                    f"(first at {pairs[pair]['_loc']})",
                )
                rec["_plan"] = None
                continue
            pairs[pair] = rec
        # Tables named only by lineage must exist and be visible to the user.
        visible = Table.objects.restrict(self.user, "view")
        names = sorted(elsewhere)
        for start in range(0, len(names), 2000):
            chunk = names[start : start + 2000]
            self.table_ids.update(visible.filter(fqn__in=chunk).values_list("fqn", "pk"))
        for rec in self.doc.lineage:
            plan = rec["_plan"]
            if plan is None:
                continue
            for key in ("source", "target"):
                if plan[key] not in self.by_fqn and plan[key] not in self.table_ids:
                    self.bad(rec, key, f"no table {plan[key]!r} in the file or the catalog")
                    rec["_plan"] = None
                    break

    def check_permissions(self):
        user = self.user
        if user.is_superuser:
            return
        existing = [rec["_plan"]["id"] for rec in self.by_fqn.values() if rec["_plan"]["id"]]
        lineage_targets = {
            self.table_ids[rec["_plan"]["target"]]
            for rec in self.doc.lineage
            if rec["_plan"] and rec["_plan"]["target"] not in self.by_fqn
        }
        ids = sorted(set(existing) | lineage_targets)
        changeable = set()
        allowed = Table.objects.restrict(user, "change")
        for start in range(0, len(ids), 2000):
            chunk = ids[start : start + 2000]
            changeable.update(allowed.filter(pk__in=chunk).values_list("pk", flat=True))
        sources = set(DataSource.objects.restrict(user, "change").values_list("pk", flat=True))
        may_add_manual = user.has_perm("catalog.add_table")
        for fqn, rec in self.by_fqn.items():
            plan = rec["_plan"]
            if plan["id"] is not None:
                if plan["id"] not in changeable:
                    self.denied.append(f"table {fqn}")
            elif plan["source_id"] is not None:
                if plan["source_id"] not in sources:
                    self.denied.append(f"table {fqn} (source)")
            elif not may_add_manual:
                self.denied.append(f"table {fqn} (manual tables)")
        for rec in self.doc.lineage:
            plan = rec["_plan"]
            target = plan and plan["target"]
            if target and target not in self.by_fqn and self.table_ids[target] not in changeable:
                self.denied.append(f"lineage into table {target}")

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
            self.progress(10 + 70 * done / total, f"tables {done} of {len(records)}")

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
                self.counts["tables"]["created"] += 1
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
                    self.counts["tables"]["updated"] += 1
                else:
                    self.counts["tables"]["unchanged"] += 1
                existing_fields = fields[table_id]
            seen = {}
            for position, item in enumerate(rec["fields"], start=1):
                self.unknown_keys(item, FIELD_KEYS | {"created_at", "updated_at"})
                name = self.coerce(item, "name", "text", 500) if "name" in item else ""
                if name == "":
                    self.bad(item, "name", "a field needs a name")
                values = self.values(item, FIELD_VALUES)
                tags = self.tag_names(item)
                wanted_rules = self.classifications(item)
                if name in ("", INVALID):
                    continue
                if name in seen:
                    self.bad(
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
                    self.counts["fields"]["created"] += 1
                    continue
                if self.mode == CREATE:
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
                    self.counts["fields"]["updated"] += 1
                else:
                    self.counts["fields"]["unchanged"] += 1
        if self.errors or self.dry_run:
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
            self.bad(item, "classifications", "expected a list of classifications")
            return {}
        wanted = {}
        statuses = CLASSIFICATION_STATUSES
        for index, entry in enumerate(value):
            where = {**item, "_loc": f"{item['_loc']}/classifications/{index}"}
            if "_row" in item:
                where["_loc"] = item["_loc"]
            if not isinstance(entry, dict) or not isinstance(entry.get("rule"), str):
                self.bad(where, "classifications", "each classification needs a rule")
                continue
            unknown = set(entry) - CLASSIFICATION_KEYS
            if unknown:
                self.bad(where, "classifications", f"unknown keys {', '.join(sorted(unknown))}")
                continue
            rule = entry["rule"][:64]
            tag = entry.get("tag")
            status = entry.get("status", "suggested")
            if tag not in self.tags and not (
                isinstance(tag, str) and "." in tag and self.may_add_tags
            ):
                self.bad(where, "classifications", f"classification {rule}: no tag {tag!r}")
                continue
            if tag not in self.tags:
                self.missing_tags.add(tag)
            if status not in statuses:
                self.bad(where, "classifications", f"classification {rule}: bad status {status!r}")
                continue
            hit_ratio = entry.get("hit_ratio")
            sample_size = entry.get("sample_size", 0)
            if hit_ratio is not None and (
                isinstance(hit_ratio, bool) or not isinstance(hit_ratio, int | float)
            ):
                self.bad(where, "classifications", f"classification {rule}: bad hit_ratio")
                continue
            if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 0:
                self.bad(where, "classifications", f"classification {rule}: bad sample_size")
                continue
            decided_by = entry.get("decided_by")
            if decided_by not in (None, "") and decided_by not in self.users:
                self.bad(where, "classifications", f"classification {rule}: no user {decided_by!r}")
                continue
            method = entry.get("method", "import")
            if not isinstance(method, str) or len(method) > 20:
                self.bad(where, "classifications", f"classification {rule}: bad method")
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
            if table.source_id is None:
                grant_creator(self.user, table)
        changes = [(t, Action.CREATE, None) for t in new_tables]
        if table_updates:
            changes += self.update_rows(Table, table_updates)
        changelog.record_many(Table, changes)

        rows = [
            (
                f.table.pk,
                f.name,
                *(f.values.get(k, FIELD_DEFAULTS[k]) for k in FIELD_VALUES),
                False,
                self.now,
                self.now,
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
            changes += self.update_rows(Field, field_updates, ["table"])
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
                    decided_at=self.now if rule["status"] != "suggested" else None,
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
                    obj.decided_at = self.now if rule["status"] != "suggested" else None
            Classification.objects.bulk_update(
                loaded.values(),
                ["tag", "status", "method", "hit_ratio", "sample_size", "decided_by", "decided_at"],
            )

    def update_rows(self, model, updates, related=()):
        """Apply changed values to rows loaded now; (instance, update, before) for the log."""
        loaded = model.objects.select_related(*related).in_bulk([pk for pk, _ in updates])
        names, changes = {"updated_at"}, []
        for pk, changed in updates:
            obj = loaded[pk]
            before = changelog.snapshot(obj)
            for key, value in changed.items():
                setattr(obj, key, value)
            obj.updated_at = self.now
            names.update(changed)
            changes.append((obj, ChangeLogEntry.Action.UPDATE, before))
        model.objects.bulk_update([obj for obj, _, _ in changes], sorted(names), batch_size=1000)
        return changes

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

    # --- lineage -----------------------------------------------------------------------

    def apply_edges(self):
        records = [rec for rec in self.doc.lineage if rec["_plan"] is not None]
        total = max(len(records), 1)
        for start in range(0, len(records), EDGE_CHUNK):
            self.apply_edge_chunk(records[start : start + EDGE_CHUNK])
            done = min(start + EDGE_CHUNK, len(records))
            self.progress(80 + 20 * done / total, f"lineage {done} of {len(records)}")

    def apply_edge_chunk(self, records):
        LineageEdge = apps.get_model("lineage", "LineageEdge")
        FieldLineageEdge = apps.get_model("lineage", "FieldLineageEdge")
        LineageEvidence = apps.get_model("lineage", "LineageEvidence")
        ends = {}
        for rec in records:
            plan = rec["_plan"]
            ends[rec["_loc"]] = (
                self.table_ids.get(plan["source"]),
                self.table_ids.get(plan["target"]),
            )
        table_ids = {pk for pair in ends.values() for pk in pair if pk}
        downstream = {down for _, down in ends.values() if down}
        pairs = {pair for pair in ends.values() if None not in pair}
        existing = {
            (row["upstream_id"], row["downstream_id"]): row
            for row in LineageEdge.objects.filter(downstream_id__in=downstream).values(
                "id", "upstream_id", "downstream_id", "origin", "status", "confidence"
            )
            if (row["upstream_id"], row["downstream_id"]) in pairs
        }
        field_edges = {
            (row["upstream_id"], row["downstream_id"]): row
            for row in FieldLineageEdge.objects.filter(
                edge_id__in=[row["id"] for row in existing.values()]
            ).values("id", "upstream_id", "downstream_id", "transformation")
        }
        names = {n for rec in records for u, d, _, _ in rec["_plan"]["fields"] for n in (u, d)}
        field_ids = {}
        ids = sorted(table_ids)
        for start in range(0, len(ids), 1000):
            field_ids.update(
                ((table_id, name), pk)
                for table_id, name, pk in Field.objects.filter(
                    table_id__in=ids[start : start + 1000], name__in=names
                ).values_list("table_id", "name", "pk")
            )

        new_edges, new_field_edges, edge_updates, transformation_updates = [], [], [], []
        for rec in records:
            plan = rec["_plan"]
            up_id, down_id = ends[rec["_loc"]]
            resolved = []
            for up, down, transformation, item in plan["fields"]:
                up_field = self.field_ref(plan["source"], up_id, up, field_ids, item, "source")
                down_field = self.field_ref(
                    plan["target"], down_id, down, field_ids, item, "target"
                )
                if up_field is not None and down_field is not None:
                    resolved.append((up_field, down_field, transformation))
            have = existing.get((up_id, down_id))
            if have is None:
                self.counts["edges"]["created"] += 1
                edge = LineageEdge(
                    upstream=Table(pk=up_id, fqn=plan["source"]),
                    downstream=Table(pk=down_id, fqn=plan["target"]),
                    origin=plan["origin"],
                    status=plan["status"],
                    confidence=plan["confidence"],
                    created_by=self.user,
                    owner=self.user,
                    decided_by=self.user if plan["status"] != "pending" else None,
                    decided_at=self.now if plan["status"] != "pending" else None,
                )
                new_edges.append(edge)
                new_field_edges += [(edge, u, d, t, plan["origin"]) for u, d, t in resolved]
                continue
            if self.mode == CREATE:
                self.bad(
                    rec,
                    "target",
                    f"the edge {plan['source']} -> {plan['target']} already exists; create "
                    "never updates (use upsert)",
                )
                continue
            changed = {k: plan[k] for k in ("origin", "status", "confidence") if have[k] != plan[k]}
            if "status" in changed:
                changed["decided_by"] = self.user if plan["status"] != "pending" else None
                changed["decided_at"] = self.now if plan["status"] != "pending" else None
            fields_changed = False
            for u, d, t in resolved:
                known = field_edges.get((u, d))
                if known is None:
                    new_field_edges.append((have["id"], u, d, t, plan["origin"]))
                    fields_changed = True
                elif known["transformation"] != t:
                    transformation_updates.append((known["id"], t))
                    fields_changed = True
            if changed or fields_changed:
                edge_updates.append((have["id"], changed))
                self.counts["edges"]["updated"] += 1
            else:
                self.counts["edges"]["unchanged"] += 1
        if self.errors or self.dry_run:
            return
        insert_objects(new_edges)
        changes = [(e, ChangeLogEntry.Action.CREATE, None) for e in new_edges]
        if edge_updates:
            changes += self.update_rows(LineageEdge, edge_updates, ["upstream", "downstream"])
        changelog.record_many(LineageEdge, changes)
        insert_objects(
            [
                LineageEvidence(
                    edge=edge,
                    kind="manual",
                    key=f"import-{self.user.pk}",
                    snippet="imported from a catalog file",
                    created_by=self.user,
                )
                for edge in new_edges
            ]
        )
        insert_objects(
            [
                FieldLineageEdge(
                    edge_id=edge if isinstance(edge, int) else edge.pk,
                    upstream_id=u,
                    downstream_id=d,
                    transformation=t,
                    origin=origin,
                )
                for edge, u, d, t, origin in new_field_edges
            ]
        )
        if transformation_updates:
            loaded = FieldLineageEdge.objects.in_bulk([pk for pk, _ in transformation_updates])
            for pk, transformation in transformation_updates:
                loaded[pk].transformation = transformation
            FieldLineageEdge.objects.bulk_update(loaded.values(), ["transformation"])

    def field_ref(self, fqn, table_id, name, field_ids, item, key):
        """A field's id, or (dry run, new table) its name when the file declares it."""
        if table_id is not None and (table_id, name) in field_ids:
            return field_ids[(table_id, name)]
        rec = self.by_fqn.get(fqn)
        written = not (self.dry_run or self.errors)
        if rec is not None and not written and any(f.get("name") == name for f in rec["fields"]):
            return name
        self.bad(item, key, f"the table {fqn} has no field {name!r}")
        return None


def job_threshold():
    return getattr_setting("BULK_IMPORT_JOB_THRESHOLD_BYTES", 5 * 1024 * 1024)


def catalog_import_submit(*, upload, user, format=None, mode=CREATE, dry_run=False):
    """Import an uploaded file now, or, above the job threshold, as a job run that reads a
    copy kept under VAR_DIR/imports. Returns ("done", result) or ("job", JobRun)."""
    size = upload.size
    if size > formats.max_upload_bytes():
        raise ImportRejected(
            f"the file is {size} bytes; the limit is {formats.max_upload_bytes()} bytes"
        )
    if mode not in MODES:
        raise ImportRejected(f"unknown mode {mode!r}; choose create or upsert")
    if size <= job_threshold():
        return "done", catalog_import(
            data=upload, user=user, format=format, mode=mode, dry_run=dry_run
        )
    import uuid

    from django.conf import settings

    from governance import jobs

    from ..tasks import import_catalog

    folder = settings.VAR_DIR / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.upload"
    with open(path, "wb") as handle:
        for block in upload.chunks():
            handle.write(block)
    job = jobs.enqueue(
        import_catalog,
        name="Import catalog" + (" (dry run)" if dry_run else ""),
        user=user,
        path=str(path),
        format=format,
        mode=mode,
        dry_run=dry_run,
    )
    return "job", job


class ImportFailed(Exception):
    """A job's import was refused; the message lists the errors."""


def catalog_import_file(*, path, user, format=None, mode=CREATE, dry_run=False, progress=None):
    """The job's side: import a stored upload and delete it afterwards."""
    from pathlib import Path

    from django.conf import settings

    file = Path(path)
    if file.resolve().parent != (Path(settings.VAR_DIR) / "imports").resolve():
        raise ImportFailed(f"{path} is not a stored upload")
    try:
        try:
            with open(file, "rb") as handle:
                return catalog_import(
                    data=handle,
                    user=user,
                    format=format,
                    mode=mode,
                    dry_run=dry_run,
                    progress=progress,
                )
        except ImportRejected as exc:
            lines = [exc.detail] + [
                f"{e['location']}: {e['field'] or ''}: {e['message']}" for e in exc.errors[:50]
            ]
            if len(exc.errors) > 50:
                lines.append(f"... and {len(exc.errors) - 50} more")
            raise ImportFailed("\n".join(lines)) from None
    finally:
        file.unlink(missing_ok=True)
