"""OpenLineage ingestion: RunEvents (and DatasetEvents, JobEvents) as the OpenLineage clients
send them become jobs, runs, catalog tables and fields, and pending lineage edges.

parse_events() checks a decoded request body and names the first problem with a JSON pointer;
ingest() writes everything in one transaction after checking the user's rights on every
dataset, so a refused or malformed batch writes nothing.

A dataset is matched to a scanned table when its namespace names a source the user may view
(a hidden source is answered like a missing one), either through a LineageNamespace row or
by the OpenLineage naming conventions (postgres://host:port with database.schema.table,
mysql://host:port with database.table, oracle://host:port with service.schema.table,
mongodb://host:port with database.collection, elasticsearch://host:port
with the index, sqlite:<file> with the table). A dataset of such a source that the catalog
does not hold yet (a pipeline's new table, an event that comes before the first scan) is
created under that source, where the next scan finds it and fills it in. Any other dataset
becomes an external table (no source, kind "external", schema = namespace, name = dataset
name).

Rights: posting lineage needs the global "add lineage edge" permission (the Steward and Admin
roles); each output table needs change, each input table view (change when fields would be
added to it); a new table under a source needs change on the source, and a new external
table the global "add table" permission. An external table is unique by namespace and name:
one the user may not see is a conflict, refused like one they may see but not write.
"""

import datetime
import os
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import CharField, Max, Q, Value
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalog.models import Field, Table
from governance import changelog
from governance.models import ChangeLogEntry
from governance.permissions import can
from governance.services import grant_creator_many
from sources.connectors import KINDS
from sources.connectors.metadata import normalize_type
from sources.models import DataSource

from .models import LineageEvidence, LineageJob, LineageNamespace, LineageRun, Origin
from .services import EdgeSpec, Evidence, LineageError, merge_table, record_edges

EVENT_TYPES = {choice.value for choice in LineageRun.State}
TERMINAL = {"COMPLETE", "FAIL", "ABORT"}
# Where events with equal times are ordered: a run ends after it starts.
STATE_RANK = {"START": 0, "RUNNING": 1, "OTHER": 1, "COMPLETE": 2, "FAIL": 2, "ABORT": 2}
SCHEMES = {
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "oracle": "oracle",
    "sqlite": "sqlite",
    "file": "sqlite",
    "mongodb": "mongodb",
    "mongodb+srv": "mongodb",
    "elasticsearch": "elasticsearch",
    "http": "elasticsearch",
    "https": "elasticsearch",
}
MAX_NAME = 255  # Table.schema and Table.name
MAX_FIELD_NAME = 500
MAX_FIELD_DEPTH = 10
# Lookups OR-ed in one query (SQLite limits an expression's depth), values in one IN list.
CHUNK = 200
IN_CHUNK = 5000


def max_events():
    return getattr(settings, "OPENLINEAGE_MAX_EVENTS", 500)


class EventError(ValueError):
    """A malformed event: the message names the problem, the pointer where it is."""

    def __init__(self, pointer, message):
        super().__init__(f"{pointer or '/'}: {message}")
        self.pointer = pointer
        self.message = message


class Denied(Exception):
    """The user may not write what the events describe; `datasets` names what is refused."""

    def __init__(self, message, datasets=()):
        super().__init__(message)
        self.message = message
        self.datasets = sorted(datasets)


@dataclass(frozen=True)
class DatasetRef:
    namespace: str
    name: str

    def __str__(self):
        return f"{self.namespace}/{self.name}"


@dataclass
class SchemaField:
    name: str
    native_type: str
    description: str


@dataclass
class DatasetIn:
    ref: DatasetRef
    pointer: str
    schema: list = field(default_factory=list)  # SchemaField, nested names dotted
    description: str = ""
    # output field -> [(input DatasetRef, input field, transformation)]
    column_lineage: dict = field(default_factory=dict)
    # inputs that feed the whole output (columnLineage "dataset" entries)
    dataset_lineage: list = field(default_factory=list)


@dataclass
class Event:
    pointer: str
    kind: str  # "run", "job" or "dataset"
    event_time: datetime.datetime
    event_type: str = "OTHER"
    run_id: uuid.UUID | None = None
    run_facets: dict = field(default_factory=dict)
    job: tuple | None = None  # (namespace, name)
    job_facets: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)  # DatasetIn
    outputs: list = field(default_factory=list)  # DatasetIn
    dataset: DatasetIn | None = None


# --- checking -------------------------------------------------------------------------------


def _type_name(value):
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _get(obj, key, pointer, kind, *, required=True):
    value = obj.get(key)
    where = f"{pointer}/{key}"
    if value is None:
        if required:
            raise EventError(where, "is required")
        return None
    if not isinstance(value, kind):
        raise EventError(where, f"must be {_type_name(kind())}, not {_type_name(value)}")
    return value


def _text(obj, key, pointer, *, required=True, limit=None):
    value = _get(obj, key, pointer, str, required=required)
    if value is None:
        return ""
    if required and not value.strip():
        raise EventError(f"{pointer}/{key}", "must not be empty")
    if limit and len(value) > limit:
        raise EventError(f"{pointer}/{key}", f"is longer than {limit} characters")
    return value


def _time(obj, key, pointer):
    text = _text(obj, key, pointer)
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None:
        raise EventError(f"{pointer}/{key}", f"not an ISO 8601 date-time: {text!r}")
    if timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    return value


def parse_events(payload):
    """Check a decoded request body: one event, or a list of events. Returns [Event]."""
    if isinstance(payload, list):
        if not payload:
            raise EventError("", "an empty list holds no event")
        if len(payload) > max_events():
            raise EventError("", f"at most {max_events()} events per request, got {len(payload)}")
        return [_parse_event(item, f"/{i}") for i, item in enumerate(payload)]
    return [_parse_event(payload, "")]


def _parse_event(obj, pointer):
    if not isinstance(obj, dict):
        raise EventError(pointer, f"an event must be an object, not {_type_name(obj)}")
    event_time = _time(obj, "eventTime", pointer)
    _text(obj, "producer", pointer)
    _text(obj, "schemaURL", pointer)
    if "run" in obj:
        kind = "run"
    elif "dataset" in obj:
        kind = "dataset"
    elif "job" in obj:
        kind = "job"
    else:
        raise EventError(pointer, "not an OpenLineage event: a RunEvent needs run and job")
    event = Event(pointer=pointer, kind=kind, event_time=event_time)
    if kind == "dataset":
        event.dataset = _parse_dataset(obj, "dataset", pointer)
        # Without a run or a job there is no lineage to record, only the dataset.
        event.dataset.column_lineage, event.dataset.dataset_lineage = {}, []
        return event
    if kind == "run":
        run = _get(obj, "run", pointer, dict)
        raw_id = _text(run, "runId", f"{pointer}/run")
        try:
            event.run_id = uuid.UUID(raw_id)
        except ValueError:
            raise EventError(f"{pointer}/run/runId", f"not a UUID: {raw_id!r}") from None
        event.run_facets = _get(run, "facets", f"{pointer}/run", dict, required=False) or {}
        event_type = _get(obj, "eventType", pointer, str, required=False) or "OTHER"
        if event_type not in EVENT_TYPES:
            raise EventError(
                f"{pointer}/eventType",
                f"unknown event type {event_type!r}; one of {', '.join(sorted(EVENT_TYPES))}",
            )
        event.event_type = event_type
    job = _get(obj, "job", pointer, dict)
    event.job = (
        _text(job, "namespace", f"{pointer}/job", limit=500),
        _text(job, "name", f"{pointer}/job", limit=500),
    )
    event.job_facets = _get(job, "facets", f"{pointer}/job", dict, required=False) or {}
    for key, target in (("inputs", event.inputs), ("outputs", event.outputs)):
        items = _get(obj, key, pointer, list, required=False) or []
        target.extend(_parse_dataset(items, i, f"{pointer}/{key}") for i in range(len(items)))
    return event


def _parse_dataset(container, key, pointer):
    where = f"{pointer}/{key}"
    obj = container[key]
    if not isinstance(obj, dict):
        raise EventError(where, f"a dataset must be an object, not {_type_name(obj)}")
    ref = DatasetRef(
        _text(obj, "namespace", where, limit=MAX_NAME).rstrip("/") or "/",
        _text(obj, "name", where, limit=MAX_NAME),
    )
    dataset = DatasetIn(ref=ref, pointer=where)
    facets = _get(obj, "facets", where, dict, required=False) or {}
    for extra in ("inputFacets", "outputFacets"):
        _get(obj, extra, where, dict, required=False)
    facets_at = f"{where}/facets"
    schema = _get(facets, "schema", facets_at, dict, required=False)
    if schema is not None:
        fields = _get(schema, "fields", f"{facets_at}/schema", list, required=False) or []
        _schema_fields(fields, f"{facets_at}/schema/fields", "", dataset.schema, 1)
    documentation = _get(facets, "documentation", facets_at, dict, required=False)
    if documentation is not None:
        dataset.description = _text(
            documentation, "description", f"{facets_at}/documentation", required=False
        )
    lineage = _get(facets, "columnLineage", facets_at, dict, required=False)
    if lineage is not None:
        _column_lineage(lineage, f"{facets_at}/columnLineage", dataset)
    return dataset


def _schema_fields(items, pointer, prefix, out, depth):
    if depth > MAX_FIELD_DEPTH:
        raise EventError(pointer, f"fields nest deeper than {MAX_FIELD_DEPTH} levels")
    for i, item in enumerate(items):
        where = f"{pointer}/{i}"
        if not isinstance(item, dict):
            raise EventError(where, f"a field must be an object, not {_type_name(item)}")
        name = prefix + _text(item, "name", where)
        if len(name) > MAX_FIELD_NAME:
            raise EventError(f"{where}/name", f"is longer than {MAX_FIELD_NAME} characters")
        native = _text(item, "type", where, required=False)
        out.append(
            SchemaField(name, native[:200], _text(item, "description", where, required=False))
        )
        nested = _get(item, "fields", where, list, required=False)
        if nested:
            _schema_fields(nested, f"{where}/fields", f"{name}.", out, depth + 1)


def _input_field(item, where):
    if not isinstance(item, dict):
        raise EventError(where, f"an input field must be an object, not {_type_name(item)}")
    ref = DatasetRef(
        _text(item, "namespace", where, limit=MAX_NAME).rstrip("/") or "/",
        _text(item, "name", where, limit=MAX_NAME),
    )
    name = _text(item, "field", where, limit=MAX_FIELD_NAME)
    transformations = _get(item, "transformations", where, list, required=False) or []
    described = []
    for j, step in enumerate(transformations):
        if not isinstance(step, dict):
            raise EventError(f"{where}/transformations/{j}", "a transformation must be an object")
        kind = "/".join(
            _text(step, key, f"{where}/transformations/{j}", required=False)
            for key in ("type", "subtype")
            if step.get(key)
        )
        text = _text(step, "description", f"{where}/transformations/{j}", required=False)
        described.append(": ".join(part for part in (kind, text) if part))
    return ref, name, "; ".join(d for d in described if d)


def _column_lineage(facet, pointer, dataset):
    fields = _get(facet, "fields", pointer, dict, required=False) or {}
    for out_name, spec in fields.items():
        where = f"{pointer}/fields/{out_name.replace('~', '~0').replace('/', '~1')}"
        if len(out_name) > MAX_FIELD_NAME or not out_name:
            raise EventError(where, f"a field name has 1 to {MAX_FIELD_NAME} characters")
        if not isinstance(spec, dict):
            raise EventError(where, f"must be an object, not {_type_name(spec)}")
        items = _get(spec, "inputFields", where, list)
        overall = " ".join(
            part
            for part in (
                _text(spec, "transformationType", where, required=False),
                _text(spec, "transformationDescription", where, required=False),
            )
            if part
        )
        entries = []
        for i, item in enumerate(items):
            ref, name, transformation = _input_field(item, f"{where}/inputFields/{i}")
            entries.append((ref, name, transformation or overall))
        dataset.column_lineage[out_name] = entries
    whole = _get(facet, "dataset", pointer, list, required=False) or []
    for i, item in enumerate(whole):
        ref, _, _ = _input_field(item, f"{pointer}/dataset/{i}")
        dataset.dataset_lineage.append(ref)


# --- datasets to tables ---------------------------------------------------------------------


def _chunks(items, size=CHUNK):
    items = list(items)
    return [items[i : i + size] for i in range(0, len(items), size)]


class DatasetResolver:
    """Finds the catalog tables datasets name, all of a request's datasets at once: the
    sources their namespaces may point at, then every candidate table in a few queries.
    Only sources the user may view count: a namespace of a hidden source is answered like
    one that names no source (its datasets are external tables)."""

    def __init__(self, refs, user):
        namespaces = {ref.namespace for ref in refs}
        visible = DataSource.objects.restrict(user, "view")
        mapped = dict(
            LineageNamespace.objects.filter(
                namespace__in=namespaces, source__in=visible.values("pk")
            ).values_list("namespace", "source_id")
        )
        kinds = {family(namespace) for namespace in namespaces} - {""}
        # Only the sources a namespace can name: its mapping or a source of its kind.
        self.sources = list(
            visible.filter(Q(kind__in=kinds) | Q(pk__in=set(mapped.values()))).only(
                "id", "name", "kind", "host", "port", "database"
            )
        )
        by_id = {s.pk: s for s in self.sources}
        self.mappings = {namespace: [by_id[pk]] for namespace, pk in mapped.items()}
        self.mapped = {}
        self.cache = {}
        self._load(set(refs))

    def resolve(self, ref):
        return self.cache[ref]

    def home(self, ref):
        """Where a dataset the catalog does not hold belongs: (source, schema, name) when
        its namespace names exactly one source whose naming gives the table, else None."""
        homes = [
            (source, keys[0])
            for source in self.sources_for(ref.namespace)
            if (keys := table_keys(source, ref.name))
        ]
        if len(homes) != 1:
            return None
        source, (schema, name) = homes[0]
        if source.kind == DataSource.Kind.ORACLE:  # as Oracle keeps unquoted names
            schema, name = schema.upper(), name.upper()
        return source, schema, name

    def _candidates(self, ref):
        """(source id, schema, name) keys in the order they are tried."""
        keys = []
        for source in self.sources_for(ref.namespace):
            for schema, name in table_keys(source, ref.name):
                keys.append((source.pk, schema, name))
                if source.kind == DataSource.Kind.ORACLE:
                    keys.append((source.pk, schema.upper(), name.upper()))
        return keys

    def _load(self, refs):
        candidates = {ref: self._candidates(ref) for ref in refs}
        wanted = defaultdict(set)  # (source id, schema) -> names
        for keys in candidates.values():
            for source_id, schema, name in keys:
                wanted[(source_id, schema)].add(name)
        # One query per chunk: the scanned candidates (by source, schema and name) and the
        # external tables (by fqn) alike.
        lookups = [
            Q(source_id=source_id, schema=schema, name__in=names)
            for (source_id, schema), names in wanted.items()
        ]
        fqns = {external_fqn(ref) for ref in refs}
        lookups += [Q(fqn__in=chunk) for chunk in _chunks(fqns, IN_CHUNK)]
        scanned, external = {}, {}
        for chunk in _chunks(lookups):
            query = Q()
            for lookup in chunk:
                query |= lookup
            for table in Table.objects.filter(query):
                scanned[(table.source_id, table.schema, table.name)] = table
                external[table.fqn] = table
        for ref, keys in candidates.items():
            found = next((scanned[key] for key in keys if key in scanned), None)
            self.cache[ref] = found if found is not None else external.get(external_fqn(ref))

    def sources_for(self, namespace):
        if namespace not in self.mapped:
            found = self.mappings.get(namespace, [])
            self.mapped[namespace] = found + [
                s for s in self.sources if s not in found and namespace_matches(namespace, s)
            ]
        return self.mapped[namespace]


def namespace_matches(namespace, source):
    """True when an OpenLineage namespace (scheme://host:port) points at the source."""
    kind = family(namespace)
    if kind != source.kind:
        return False
    parts = urlsplit(namespace)
    if kind == DataSource.Kind.SQLITE:
        path = unquote(parts.netloc + parts.path)
        if not path or not source.database:
            return False
        stored = os.path.join(getattr(settings, "SOURCE_SQLITE_DIR", ""), source.database)
        return os.path.normpath(path) in {
            os.path.normpath(source.database),
            os.path.normpath(stored),
            os.path.realpath(stored),
        }
    try:
        port = parts.port
    except ValueError:
        return False
    default = KINDS[kind].default_port
    host = (parts.hostname or "").lower()
    return bool(host) and (
        host == source.host.lower() and (port or default) == (source.port or default)
    )


def table_keys(source, name):
    """The (schema, table) pairs a dataset name may mean in a source of this kind."""
    parts = name.split(".")
    kind = source.kind
    if kind == DataSource.Kind.ELASTICSEARCH:
        return [("", name)]
    if kind == DataSource.Kind.MONGODB:
        database, _, collection = name.partition(".")
        return [(database, collection)] if collection else [(source.database, name)]
    if kind in (DataSource.Kind.POSTGRESQL, DataSource.Kind.ORACLE):
        if len(parts) >= 3:
            database, schema, table = parts[0], parts[1], ".".join(parts[2:])
            if source.database and database.lower() != source.database.lower():
                return []
            return [(schema, table)]
        if len(parts) == 2:
            return [tuple(parts)]
        return [("public", name)] if kind == DataSource.Kind.POSTGRESQL else []
    if kind == DataSource.Kind.MYSQL:
        if len(parts) == 2:
            return [tuple(parts)]
        return [(source.database, name)] if len(parts) == 1 and source.database else []
    if kind == DataSource.Kind.SQLITE:
        return [tuple(parts)] if len(parts) == 2 else [("main", name)]
    return []


def external_fqn(ref):
    return Table.make_fqn(None, ref.namespace, ref.name)


def family(namespace):
    """The source kind a namespace's URL scheme names, "" when none (or not a URL)."""
    try:
        scheme = urlsplit(namespace).scheme
    except ValueError:
        return ""
    return SCHEMES.get(scheme.lower(), "")


def adopt_external_tables(sender, source, tables=None, **kwargs):
    """An external table that OpenLineage events made for a dataset of this source before
    the source was registered, scanned or mapped (LineageNamespace) is the same table as
    the source's catalogued one: its lineage and runs move there (merge_table) and the
    external table goes. `tables`: the tables to look among (a scan's new ones, as the
    catalog.signals.tables_added receiver), or all of the source's. Returns counts."""
    if tables is not None and not tables:
        return {"lineage_tables_adopted": 0}
    mapped = LineageNamespace.objects.filter(source=source).values_list("namespace", flat=True)
    mapped = set(mapped)
    lookup = Q(schema__in=mapped)
    for scheme, kind in SCHEMES.items():
        if kind == source.kind:
            lookup |= Q(schema__istartswith=f"{scheme}:")
    candidates = []  # (external table, the (schema, name) keys it may have in the source)
    for table in Table.objects.filter(lookup, source=None, kind=Table.Kind.EXTERNAL):
        dataset = table.properties.get("openlineage") or {}
        namespace = dataset.get("namespace", "")
        if namespace in mapped or namespace_matches(namespace, source):
            keys = table_keys(source, dataset.get("name", ""))
            candidates.append((table, keys + [(s.upper(), n.upper()) for s, n in keys]))
    if not candidates:
        return {"lineage_tables_adopted": 0}
    if tables is None:
        names = {name for _, keys in candidates for _, name in keys}
        tables = Table.objects.filter(source=source, name__in=names)
    by_key = {(t.schema, t.name): t for t in tables}
    adopted = 0
    for external, keys in sorted(candidates, key=lambda c: c[0].pk):
        found = next((by_key[key] for key in keys if key in by_key), None)
        if found is not None:
            merge_table(external, found)
            adopted += 1
    return {"lineage_tables_adopted": adopted}


# --- writing --------------------------------------------------------------------------------


@dataclass
class Plan:
    """What a batch touches: each dataset's table (or None: to be created, under its source
    when it has a home), the fields each new or external table gains, and the role each
    dataset plays."""

    tables: dict = field(default_factory=dict)  # DatasetRef -> Table | None
    # DatasetRef -> (source, schema, name) for new tables of a known source
    homes: dict = field(default_factory=dict)
    new_fields: dict = field(default_factory=lambda: defaultdict(dict))  # ref -> {name: SF}
    outputs: set = field(default_factory=set)
    descriptions: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    # The catalog fields the batch names, existing or created: {table pk: {name: Field}}
    fields: dict = field(default_factory=lambda: defaultdict(dict))


def _datasets(event):
    """(DatasetIn, is_output) for every dataset an event names, column-lineage inputs too."""
    items = [(d, False) for d in event.inputs] + [(d, True) for d in event.outputs]
    if event.dataset is not None:
        items.append((event.dataset, False))
    for output in event.outputs:
        for entries in output.column_lineage.values():
            for ref, _, _ in entries:
                items.append((DatasetIn(ref=ref, pointer=output.pointer), False))
        for ref in output.dataset_lineage:
            items.append((DatasetIn(ref=ref, pointer=output.pointer), False))
    return items


def _named_fields(datasets):
    """(ref, SchemaField) for every field the datasets name: schema, column lineage."""
    for dataset, _ in datasets:
        for item in dataset.schema:
            yield dataset.ref, item
        for out_name, entries in dataset.column_lineage.items():
            yield dataset.ref, SchemaField(out_name, "", "")
            for ref, name, _ in entries:
                yield ref, SchemaField(name, "", "")


def _plan(events, user):
    plan = Plan()
    datasets = [item for event in events for item in _datasets(event)]
    resolver = DatasetResolver({dataset.ref for dataset, _ in datasets}, user)
    for dataset, is_output in datasets:
        if dataset.ref not in plan.tables:
            plan.tables[dataset.ref] = resolver.resolve(dataset.ref)
            if plan.tables[dataset.ref] is None and (home := resolver.home(dataset.ref)):
                plan.homes[dataset.ref] = home
        if is_output:
            plan.outputs.add(dataset.ref)
    named = list(_named_fields(datasets))
    wanted = defaultdict(set)  # table pk -> field names
    for ref, item in named:
        if plan.tables[ref] is not None:
            wanted[plan.tables[ref].pk].add(item.name)
    for chunk in _chunks(wanted.items()):
        query = Q()
        for table_id, names in chunk:
            query |= Q(table_id=table_id, name__in=names)
        for f in Field.objects.filter(query):
            plan.fields[f.table_id][f.name] = f
    # Scanned tables keep the structure their scan read; only the others gain fields.
    for ref, item in named:
        table = plan.tables[ref]
        if table is not None and table.source_id is not None:
            continue
        if item.name not in plan.new_fields[ref] and (
            table is None or item.name not in plan.fields[table.pk]
        ):
            plan.new_fields[ref][item.name] = item
    for dataset, _ in datasets:
        if dataset.description and plan.tables[dataset.ref] is None:
            plan.descriptions.setdefault(dataset.ref, dataset.description)
    return plan


def _check(user, plan):
    if not user.is_superuser and not user.has_perm("lineage.add_lineageedge"):
        raise Denied("recording lineage needs the permission to add lineage edges (Steward role)")
    refused = set()
    new = [ref for ref, table in plan.tables.items() if table is None]
    if any(ref not in plan.homes for ref in new) and not user.has_perm("catalog.add_table"):
        refused.update(ref for ref in new if ref not in plan.homes)
    sources = {source.pk: source for source, _, _ in plan.homes.values()}
    changeable = {pk for pk, source in sources.items() if can(user, "change", source)}
    refused.update(ref for ref, home in plan.homes.items() if home[0].pk not in changeable)
    needs = defaultdict(dict)  # action -> {table pk: ref}
    for ref, table in plan.tables.items():
        if table is not None:
            writes = ref in plan.outputs or bool(plan.new_fields.get(ref))
            needs["change" if writes else "view"][table.pk] = ref
    allowed = _allowed(user, {action: set(refs) for action, refs in needs.items()})
    for action, refs in needs.items():
        refused.update(ref for pk, ref in refs.items() if pk not in allowed[action])
    if refused:
        raise Denied(
            "no permission to write lineage into (or read) these datasets",
            [str(ref) for ref in refused],
        )


def _allowed(user, needs):
    """Which tables the user may act on, {action: {pk}} for needs = {action: {pk}}: each
    action's restrict() on its own tables, all in one query (a UNION)."""
    parts = [
        Table.objects.restrict(user, action)
        .filter(pk__in=chunk)
        .order_by()
        .annotate(action=Value(action, output_field=CharField()))
        .values_list("pk", "action")
        for action, pks in needs.items()
        for chunk in _chunks(pks, IN_CHUNK)
    ]
    allowed = {action: set() for action in needs}
    if parts:
        for pk, action in parts[0].union(*parts[1:], all=True):
            allowed[action].add(pk)
    return allowed


NEW_TABLE_KINDS = {
    DataSource.Kind.MONGODB: Table.Kind.COLLECTION,
    DataSource.Kind.ELASTICSEARCH: Table.Kind.INDEX,
}


def _create_tables(plan, user, now):
    new = {}  # by fqn: ("a.b", "c") and ("a", "b.c") name one external table
    for ref, table in plan.tables.items():
        if table is not None:
            continue
        if ref in plan.homes:
            source, schema, name = plan.homes[ref]
            kind = NEW_TABLE_KINDS.get(source.kind, Table.Kind.TABLE)
            fqn = Table.make_fqn(source.name, schema, name)
        else:
            source, schema, name, kind = None, ref.namespace, ref.name, Table.Kind.EXTERNAL
            fqn = external_fqn(ref)
        if fqn not in new:
            new[fqn] = Table(
                source=source,
                schema=schema,
                name=name,
                kind=kind,
                fqn=fqn,
                first_seen=now,
                owner=user,
                description=plan.descriptions.get(ref, ""),
                properties={"openlineage": {"namespace": ref.namespace, "name": ref.name}},
            )
        plan.tables[ref] = new[fqn]
    new = list(new.values())
    Table.objects.bulk_create(new)
    changelog.record_many(Table, [(t, ChangeLogEntry.Action.CREATE, None) for t in new])
    grant_creator_many(user, new)
    return new


def _create_fields(plan):
    new = []
    wanted = {ref: names for ref, names in plan.new_fields.items() if names}
    positions = dict(
        Field.objects.filter(table__in=[plan.tables[ref] for ref in wanted])
        .values("table_id")
        .annotate(last=Max("position"))
        .values_list("table_id", "last")
    )
    for ref, names in wanted.items():
        table = plan.tables[ref]
        position = positions.get(table.pk) or 0
        for item in names.values():
            position += 1
            native = item.native_type
            new.append(
                Field(
                    table=table,
                    name=item.name,
                    position=position,
                    native_type=native,
                    data_type=normalize_type(family(ref.namespace), native) if native else "",
                    description=item.description,
                )
            )
    Field.objects.bulk_create(new, batch_size=2000)
    for f in new:
        plan.fields[f.table.pk][f.name] = f
    return new


def _jobs(events):
    """The events' jobs, {(namespace, name): LineageJob}, created when new; each event's job
    facets merge into its job in event order."""
    keys = list(dict.fromkeys(e.job for e in events if e.kind != "dataset"))
    by_namespace = defaultdict(set)
    for namespace, name in keys:
        by_namespace[namespace].add(name)
    jobs = {}
    for chunk in _chunks(by_namespace.items()):
        query = Q()
        for namespace, names in chunk:
            query |= Q(namespace=namespace, name__in=names)
        for job in LineageJob.objects.filter(query):
            jobs[(job.namespace, job.name)] = job
    new = [LineageJob(namespace=ns, name=name) for ns, name in keys if (ns, name) not in jobs]
    jobs.update({(job.namespace, job.name): job for job in new})
    changed = {}
    for event in events:
        if event.kind != "dataset" and event.job_facets:
            job = jobs[event.job]
            merged = {**job.facets, **event.job_facets}
            if merged != job.facets:
                job.facets = merged
                changed[event.job] = job
    LineageJob.objects.bulk_create(new)
    now = timezone.now()
    updated = [job for job in changed.values() if job not in new]
    for job in updated:
        job.updated_at = now
    LineageJob.objects.bulk_update(updated, ["facets", "updated_at"])
    return jobs


def _runs(events, jobs):
    """Each run event updates its run, in event order: the run's state follows its latest
    event; a late START keeps a known end.
    Returns {run id: LineageRun} and the new runs."""
    ids = {e.run_id for e in events if e.kind == "run"}
    runs = {}
    for chunk in _chunks(ids, IN_CHUNK):
        for run in LineageRun.objects.select_for_update().filter(run_id__in=chunk):
            runs[run.run_id] = run
    new, updated = [], {}
    for event in events:
        if event.kind != "run":
            continue
        job = jobs[event.job]
        run = runs.get(event.run_id)
        t, state = event.event_time, event.event_type
        if run is None:
            run = LineageRun(job=job, run_id=event.run_id, state=state, event_time=t)
            run.facets = dict(event.run_facets)
            runs[event.run_id] = run
            new.append(run)
        else:
            if run.job_id != job.pk:
                raise EventError(
                    f"{event.pointer}/run/runId", f"run {event.run_id} belongs to another job"
                )
            newer = (t, STATE_RANK[state]) >= (run.event_time, STATE_RANK[run.state])
            if newer and not (run.state in TERMINAL and state not in TERMINAL):
                run.state, run.event_time = state, t
            older, latest = (
                (run.facets, event.run_facets) if newer else (event.run_facets, run.facets)
            )
            run.facets = {**older, **latest}
            if run.pk is not None:
                updated[run.run_id] = run
        if state == "START":
            run.started_at = min(run.started_at, t) if run.started_at else t
        if state in TERMINAL:
            run.ended_at = max(run.ended_at, t) if run.ended_at else t
    LineageRun.objects.bulk_create(new)
    LineageRun.objects.bulk_update(
        list(updated.values()), ["state", "event_time", "facets", "started_at", "ended_at"]
    )
    return runs, new


def _link_runs(events, runs, new_runs, plan):
    """run.inputs.add() and run.outputs.add() for every run event, in two queries each (one
    when every run is new: a new run has no links yet)."""
    new_ids = {run.pk for run in new_runs}
    for attr in ("inputs", "outputs"):
        through = getattr(LineageRun, attr).through
        wanted = {}
        for event in events:
            if event.kind == "run":
                run = runs[event.run_id]
                for d in getattr(event, attr):
                    wanted[(run.pk, plan.tables[d.ref].pk)] = None
        held = set()
        old_runs = {run_id for run_id, _ in wanted if run_id not in new_ids}
        for chunk in _chunks(old_runs, IN_CHUNK):
            held.update(
                through.objects.filter(lineagerun_id__in=chunk).values_list(
                    "lineagerun_id", "table_id"
                )
            )
        through.objects.bulk_create(
            [through(lineagerun_id=r, table_id=t) for r, t in wanted if (r, t) not in held]
        )


def _edge_specs(event, plan, evidence, fields):
    """Each input feeds each output; columnLineage adds field edges (and its own inputs)."""
    specs = {}

    def spec(up, down):
        key = (up.pk, down.pk)
        if key not in specs:
            specs[key] = EdgeSpec(upstream=up, downstream=down, evidence=evidence)
        return specs[key]

    for output in event.outputs:
        down = plan.tables[output.ref]
        for dataset in event.inputs:
            up = plan.tables[dataset.ref]
            if up.pk != down.pk:
                spec(up, down)
        for ref in output.dataset_lineage:
            if plan.tables[ref].pk != down.pk:
                spec(plan.tables[ref], down)
        for out_name, entries in output.column_lineage.items():
            down_field = fields[down.pk].get(out_name)
            for ref, in_name, transformation in entries:
                up = plan.tables[ref]
                up_field = fields[up.pk].get(in_name)
                if up.pk == down.pk:
                    continue  # a table feeding itself is not lineage Steward records
                if down_field is None or up_field is None:
                    missing = f"{down}.{out_name}" if down_field is None else f"{up}.{in_name}"
                    plan.warnings.append(f"{output.pointer}: no field {missing} in the catalog")
                    spec(up, down)
                    continue
                spec(up, down).fields.append((up_field, down_field, transformation))
    return list(specs.values())


def ingest(events, *, user, attempts=3):
    """Write a checked batch of events in one transaction; returns the response summary.
    Two requests creating the same table, job or run at once collide on a unique key: the
    loser starts again and finds what the winner wrote."""
    for _ in range(attempts - 1):
        try:
            return _ingest(events, user=user)
        except IntegrityError:
            continue
    return _ingest(events, user=user)


def _ingest(events, *, user):
    totals = dict.fromkeys(
        ("tables_created", "fields_created", "edges_created", "field_edges_created"), 0
    )
    run_ids, jobs_seen = [], []
    now = timezone.now()
    with transaction.atomic():
        plan = _plan(events, user)
        _check(user, plan)
        totals["tables_created"] = len(_create_tables(plan, user, now))
        totals["fields_created"] = len(_create_fields(plan))
        jobs = _jobs(events)
        runs, new_runs = _runs(events, jobs)
        _link_runs(events, runs, new_runs, plan)
        specs = []
        for event in events:
            if event.kind == "dataset":
                continue
            job = jobs[event.job]
            jobs_seen.append(str(job))
            run = None
            if event.kind == "run":
                run = runs[event.run_id]
                run_ids.append(str(run.run_id))
                key = str(run.run_id)
            else:
                key = f"job:{job.pk}"
            evidence = Evidence(
                kind=LineageEvidence.Kind.OPENLINEAGE, key=key, snippet=str(job), run=run
            )
            specs.extend(_edge_specs(event, plan, evidence, plan.fields))
        try:
            _, counts = record_edges(specs, origin=Origin.OPENLINEAGE, user=user)
        except LineageError as exc:
            raise EventError("", str(exc)) from exc
        totals["edges_created"] = counts["edges_created"]
        totals["field_edges_created"] = counts["field_edges_created"]
    single = len(events) == 1
    return {
        "run": (run_ids[0] if run_ids else None) if single else run_ids,
        "job": (jobs_seen[0] if jobs_seen else None) if single else jobs_seen,
        **totals,
        "warnings": plan.warnings,
    }
