"""Lineage inferred from SQL: statements a user submits, and the view definitions a scan reads.

lineage.sql says what the SQL reads and writes; here its names meet the catalog. A table
resolves only among the tables the user may view (of one source when given), with the
dialect's case rule first and case-insensitively when that finds nothing. Edges are stored
through lineage.services.record_edges as inferred and pending, with the SQL as evidence.
"""

import hashlib
import logging
from collections import defaultdict

from django.db import transaction
from django.db.models.functions import Lower
from sqlglot import exp

from catalog.models import Field, Table
from governance.permissions import can

from . import sql as sqllineage
from .models import LineageEvidence, Origin
from .services import EdgeSpec, Evidence, record_edges, retire_view_evidence

log = logging.getLogger(__name__)

VIEW_KINDS = (Table.Kind.VIEW, Table.Kind.MATERIALIZED_VIEW)
SNIPPET_CHARS = 2000
HIDDEN = (
    "the source showed no definition to the scanning account (MySQL and MariaDB show it "
    "only to accounts with the SHOW VIEW privilege)"
)
CHUNK = 2000  # ids per IN (...) query, well under SQLite's variable limit


class ApplyDenied(PermissionError):
    """The user may not change some of the tables the SQL writes."""

    def __init__(self, tables):
        super().__init__(f"you may not change {', '.join(tables)}")
        self.tables = tables


def default_schema_for(source):
    """The schema an unqualified name means in a source's SQL."""
    if source is None:
        return ""
    return {
        "postgresql": "public",
        "sqlite": "main",
        "mysql": source.database or "",
        "oracle": (source.username or "").upper(),  # a user's own schema
    }.get(source.kind, "")


def sql_hash(statement, dialect):
    """sha256 of the statement as sqlglot writes it: the same SQL in another layout, case
    or comment hashes the same."""
    text = statement.sql(dialect=dialect, comments=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _split(name):
    parts = name.split(".")
    return (parts[-2] if len(parts) > 1 else None), parts[-1]


class Catalog:
    """Tables and fields for a set of dotted names, looked up in a few queries."""

    def __init__(self, tables):
        self.tables = list(tables)  # Table rows the names may resolve to
        self.by_name = defaultdict(list)
        for table in self.tables:
            self.by_name[table.name.lower()].append(table)
        self.fields = {}  # table id -> {field name: Field}

    @classmethod
    def lookup(cls, names, *, source=None, user=None):
        # Any case: a dialect's folding and the catalog's spelling need not agree (SQLite).
        wanted = sorted({_split(n)[1].lower() for n in names})
        queryset = (
            Table.objects.filter(removed=False)
            .annotate(lower_name=Lower("name"))
            .select_related("source")
        )
        if source is not None:
            queryset = queryset.filter(source=source)
        if user is not None:
            queryset = queryset.restrict(user, "view")
        rows = []
        for start in range(0, len(wanted), CHUNK):
            rows.extend(queryset.filter(lower_name__in=wanted[start : start + CHUNK]))
        return cls(rows)

    def resolve(self, name):
        """The one table `name` ("schema.table") means, or None (unknown or ambiguous)."""
        schema, table = _split(name)
        candidates = self.by_name.get(table.lower(), [])
        for exact in (True, False):
            found = [
                t
                for t in candidates
                if (t.name == table if exact else t.name.lower() == table.lower())
                and (
                    schema is None
                    or (t.schema == schema if exact else t.schema.lower() == schema.lower())
                )
            ]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                return None
        return None

    def named(self, name):
        """Every table `name` ("schema.table") may mean, in any case."""
        schema, table = _split(name)
        return [
            t
            for t in self.by_name.get(table.lower(), [])
            if schema is None or t.schema.lower() == schema.lower()
        ]

    def resolve_unqualified(self, name, schemas):
        """The table an unqualified name means: the first of `schemas` (a search path) that
        has it, else the only table of that name."""
        for schema in schemas:
            if schema and (table := self.resolve(f"{schema}.{name}")) is not None:
                return table
        return self.resolve(name)

    def load_fields(self, tables):
        ids = sorted({t.pk for t in tables} - set(self.fields))
        for table_id in ids:
            self.fields[table_id] = {}
        for start in range(0, len(ids), CHUNK):
            for field in Field.objects.filter(
                table_id__in=ids[start : start + CHUNK], removed=False
            ).order_by("table_id", "position", "name"):
                self.fields[field.table_id][field.name] = field

    def field(self, table, name):
        fields = self.fields.get(table.pk, {})
        if name in fields:
            return fields[name]
        folded = [f for n, f in fields.items() if n.lower() == name.lower()]
        return folded[0] if len(folded) == 1 else None

    def schema_mapping(self, resolved):
        """{(schema, table) as the SQL names it: [column names]} for the resolved tables."""
        return {
            tuple(name.split(".")[-2:]): list(self.fields.get(t.pk, {}))
            for name, t in resolved.items()
        }


def _column(name):
    table, _, column = name.rpartition(".")
    return table, column


def _field_edges(lineage, resolved, catalog, upstream, downstream):
    """(upstream Field, downstream Field, transformation) for one table pair."""
    edges = []
    for target, (sources, transformation) in lineage.columns.items():
        target_table, target_column = _column(target)
        if resolved.get(target_table) is not downstream:
            continue
        down = catalog.field(downstream, target_column)
        if down is None:
            continue
        for source in sources:
            source_table, source_column = _column(source)
            if resolved.get(source_table) is not upstream:
                continue
            up = catalog.field(upstream, source_column)
            if up is not None:
                edges.append((up, down, transformation))
    return edges


def _specs(lineage, resolved, catalog, evidence):
    specs = []
    for target in sorted(lineage.targets):
        downstream = resolved.get(target)
        if downstream is None:
            continue
        for source in sorted(lineage.sources):
            upstream = resolved.get(source)
            if upstream is None or upstream.pk == downstream.pk:
                continue
            fields = _field_edges(lineage, resolved, catalog, upstream, downstream)
            specs.append(EdgeSpec(upstream, downstream, evidence, fields))
    return specs


def _named(names, resolved, catalog):
    """The catalog tables an evidence text names: the table each name resolved to and, for
    a name that did not resolve (ambiguous, or not among the tables the user may view),
    every table of `catalog` it may mean, so that its readers never see a hidden name."""
    tables = []
    for name in names:
        tables.extend([resolved[name]] if name in resolved else catalog.named(name))
    return tables


def _unresolved(lineage, resolved, catalog):
    missing = set(lineage.unresolved)
    missing |= {n for n in lineage.sources | lineage.targets if n not in resolved}
    for entry_target, (sources, _) in lineage.columns.items():
        for name in (entry_target, *sources):
            table_name, column = _column(name)
            table = resolved.get(table_name)
            if table is not None and catalog.field(table, column) is None:
                missing.add(name)
    return missing


def infer(sql, dialect, default_schema="", source=None, apply=False, user=None):
    """Lineage of `sql` with catalog ids; with apply, stored as inferred, pending edges.

    Raises lineage.sql.SqlError (unreadable SQL), ValueError (unknown dialect) and
    ApplyDenied (apply without the change permission on a table the SQL writes)."""
    if source is not None and not default_schema:
        default_schema = default_schema_for(source)
    statements = sqllineage.parse(sql, dialect)
    read = sqllineage.dialect_name(dialect)
    names = sqllineage.referenced_tables(statements, default_schema)
    catalog = Catalog.lookup(names, source=source, user=user)
    resolved = {n: t for n in names if (t := catalog.resolve(n)) is not None}
    catalog.load_fields(resolved.values())
    mapping = catalog.schema_mapping(resolved)

    total = sqllineage.Lineage()
    per_statement = []
    for statement in statements:
        lineage = sqllineage.analyze([statement], dialect, default_schema, mapping)
        per_statement.append((statement, lineage))
        total.sources |= lineage.sources
        total.targets |= lineage.targets
        total.unresolved |= lineage.unresolved
        total.skipped += lineage.skipped
        total.statements += 1
        for target, (sources, transformation) in lineage.columns.items():
            total.add_column(target, sources, transformation)
    for name in total.sources | total.targets:
        if name not in resolved and (t := catalog.resolve(name)) is not None:
            resolved[name] = t
    answer = total.as_dict()
    answer["unresolved"] = sorted(_unresolved(total, resolved, catalog))
    answer["tables"] = [
        {"name": name, "table_id": resolved[name].pk if name in resolved else None}
        for name in sorted(total.sources | total.targets)
    ]
    if not apply:
        return answer

    targets = {resolved[n] for n in total.targets if n in resolved}
    denied = sorted(t.fqn for t in targets if user is not None and not can(user, "change", t))
    if denied:
        raise ApplyDenied(denied)
    texts = [
        (statement, lineage, sqllineage.referenced_tables([statement], default_schema))
        for statement, lineage in per_statement
    ]
    for _, lineage, statement_names in texts:
        statement_names |= lineage.sources | lineage.targets
    # The names the user cannot see, among every table (of the source when given).
    unseen = Catalog.lookup(
        {n for _, _, names in texts for n in names if n not in resolved}, source=source
    )
    specs = []
    for statement, lineage, statement_names in texts:
        digest = sql_hash(statement, read)
        evidence = Evidence(
            kind=LineageEvidence.Kind.SQL,
            key=digest,
            sql_hash=digest,
            snippet=statement.sql(dialect=read, pretty=True)[:SNIPPET_CHARS],
            tables=_named(statement_names, resolved, unseen),
        )
        specs.extend(_specs(lineage, resolved, catalog, evidence))
    with transaction.atomic():
        _, counts = record_edges(specs, origin=Origin.INFERRED, user=user)
    answer["edges"] = counts
    return answer


def infer_views(source, views):
    """Table and field edges from view definitions (each view is the downstream table).
    A definition that cannot be read is counted and logged, never raised: a scan must not
    fail because of one view."""
    dialect = sqllineage.SOURCE_DIALECTS.get(source.kind)
    counts = dict.fromkeys(
        (
            "lineage_edges",
            "lineage_field_edges",
            "lineage_errors",
            "lineage_edges_retired",
            "lineage_edges_reopened",
            "lineage_field_edges_retired",
        ),
        0,
    )
    views = [v for v in views if v.kind in VIEW_KINDS]
    if dialect is None or not views:
        return counts
    parsed, names = [], set()
    for view in views:
        if not view.view_definition:  # the source hid it from the scanning account
            _warn(view, HIDDEN)
            counts["lineage_errors"] += 1
            continue
        try:
            statements = sqllineage.parse(view.view_definition, dialect)
        except sqllineage.SqlError as exc:
            _warn(view, exc)
            counts["lineage_errors"] += 1
            continue
        view_names = sqllineage.referenced_tables(statements)  # unqualified ones stay bare
        names |= view_names
        parsed.append((view, statements, view_names))
    catalog = Catalog.lookup(names, source=source)
    view_ids = {v.pk for v, _, _ in parsed}
    search_path = ["public"] if source.kind == "postgresql" else []
    for index, (view, statements, view_names) in enumerate(parsed):
        schemas = {}
        for name in view_names:
            if "." not in name:
                table = catalog.resolve_unqualified(name, [view.schema, *search_path])
                if table is not None:
                    schemas[name] = table.schema
        sqllineage.set_schemas(statements, schemas)
        parsed[index] = (view, statements, sqllineage.referenced_tables(statements, view.schema))
    resolved_names = {
        n: t for _, _, view_names in parsed for n in view_names if (t := catalog.resolve(n))
    }
    catalog.load_fields([*resolved_names.values(), *(v for v, _, _ in parsed)])

    specs, read_now = [], {}
    for view, statements, view_names in parsed:
        resolved = {n: resolved_names[n] for n in view_names if n in resolved_names}
        target = exp.table_(view.name, db=view.schema or None, quoted=True)
        target_name = sqllineage.table_name(target)
        resolved[target_name] = view
        mapping = catalog.schema_mapping(resolved)
        try:
            lineage = sqllineage.analyze(statements, dialect, view.schema, mapping, target=target)
        except Exception as exc:  # noqa: BLE001  (any failure to read one view is that view's)
            _warn(view, exc)
            counts["lineage_errors"] += 1
            continue
        # A definition written as CREATE VIEW ... AS names its own target.
        for name in lineage.targets:
            resolved.setdefault(name, view)
        evidence = Evidence(
            kind=LineageEvidence.Kind.VIEW,
            key=str(view.pk),
            sql_hash=hashlib.sha256(view.view_definition.encode()).hexdigest(),
            snippet=view.view_definition[:SNIPPET_CHARS],
            view=view,
            tables=[view, *_named(view_names | lineage.sources, resolved, catalog)],
        )
        view_specs = [
            s for s in _specs(lineage, resolved, catalog, evidence) if s.downstream.pk in view_ids
        ]
        specs.extend(view_specs)
        read_now[view.pk] = (
            evidence,
            {s.upstream.pk: {(up.pk, down.pk) for up, down, _ in s.fields} for s in view_specs},
        )
    with transaction.atomic():
        retired = retire_view_evidence(read_now)
        _, recorded = record_edges(specs, origin=Origin.INFERRED)
    counts["lineage_edges"] = recorded["edges_created"]
    counts["lineage_field_edges"] = recorded["field_edges_created"]
    for key, value in retired.items():
        counts[f"lineage_{key}"] = value
    return counts


def _warn(view, exc):
    log.warning("lineage: cannot read the definition of view %s: %s", view.fqn, exc)


def on_views_changed(sender, source, tables, job=None, **kwargs):
    """catalog.signals.views_changed receiver: infer lineage of new or redefined views."""
    return infer_views(source, tables)
