"""Table and column lineage read from SQL text with sqlglot (no database, no Django).

`analyze(sql, dialect)` answers which tables the statements read (sources) and write
(targets), and where each written column comes from, following CTEs, subqueries, joins,
aliases, UNION, `SELECT *` (expanded from the `schema` mapping the caller passes),
INSERT ... SELECT, CREATE TABLE/VIEW ... AS, MERGE and UPDATE ... FROM.

Names come back as the catalog stores them: identifiers are normalised with the dialect's
case rule (unquoted names fold to lower case in PostgreSQL, SQLite and generic SQL, to upper
case in Oracle; MySQL keeps them as written; quoted names are kept as written), and an
unqualified table gets `default_schema`. A table is "schema.table" (or as many parts as the
SQL gives), a column is "schema.table.column".
"""

from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy
from sqlglot.dialects.dialect import Dialects as _Dialects
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope
from sqlglot.schema import MappingSchema

# "ansi" is generic SQL: sqlglot's own (default) dialect.
DIALECTS = sorted({"ansi"} | {d.value for d in _Dialects if d.value})
# The catalog's source kinds and the dialect their SQL is written in.
SOURCE_DIALECTS = {
    "postgresql": "postgres",
    "mysql": "mysql",
    "oracle": "oracle",
    "sqlite": "sqlite",
}


class SqlError(ValueError):
    """SQL that cannot be read, with the parser's message and position (1-based)."""

    def __init__(self, message, line=None, col=None):
        super().__init__(message if line is None else f"{message} (line {line}, col {col})")
        self.message, self.line, self.col = message, line, col


def dialect_name(dialect):
    """sqlglot's name for `dialect`; ValueError naming the allowed ones when unknown."""
    name = (dialect or "").strip().lower()
    if name not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; allowed: {', '.join(DIALECTS)}")
    return "" if name == "ansi" else name


@dataclass
class Lineage:
    sources: set = field(default_factory=set)
    targets: set = field(default_factory=set)
    # target column -> ({source columns}, transformation or "")
    columns: dict = field(default_factory=dict)
    unresolved: set = field(default_factory=set)
    skipped: list = field(default_factory=list)
    statements: int = 0

    def as_dict(self):
        return {
            "sources": sorted(self.sources),
            "targets": sorted(self.targets),
            "columns": [
                {"target": target, "sources": sorted(sources), "transformation": transformation}
                for target, (sources, transformation) in sorted(self.columns.items())
            ],
            "unresolved": sorted(self.unresolved),
            "skipped": self.skipped,
            "statements": self.statements,
        }

    def add_column(self, target, sources, transformation):
        known, known_transformation = self.columns.get(target, (set(), ""))
        self.columns[target] = (known | sources, known_transformation or transformation)


def parse(sql, dialect):
    """The statements of `sql` (normalised identifiers); SqlError when it does not parse."""
    read = dialect_name(dialect)
    try:
        statements = Dialect.get_or_raise(read).parse(sql)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        message = first.get("description") or str(exc)
        raise SqlError(message, first.get("line"), first.get("col")) from exc
    except TokenError as exc:
        raise SqlError(str(exc)) from exc
    return [normalize_identifiers(s, dialect=read) for s in statements if s is not None]


def table_name(table, default_schema=""):
    """Dotted name of a sqlglot Table node, with the default schema when it has none."""
    parts = [table.catalog, table.db or default_schema, table.name]
    return ".".join(p for p in parts if p)


def referenced_tables(statements, default_schema=""):
    """Every physical table named in the statements (CTE names excluded)."""
    names = set()
    for statement in statements:
        ctes = {c.alias_or_name for c in statement.find_all(exp.CTE)}
        for table in statement.find_all(exp.Table):
            if table.name and not (not table.db and table.name in ctes):
                names.add(table_name(table, default_schema))
    return names


def set_schemas(statements, schemas):
    """Give unqualified tables the schema found for them ({table name: schema}), in place:
    where a name is looked up along a search path rather than in one default schema."""
    for statement in statements:
        ctes = {c.alias_or_name for c in statement.find_all(exp.CTE)}
        for table in statement.find_all(exp.Table):
            if not table.db and table.name in schemas and table.name not in ctes:
                table.set("db", exp.to_identifier(schemas[table.name], quoted=True))
    return statements


def analyze(sql, dialect, default_schema="", schema=None, target=None):
    """Lineage of the statements in `sql` (text, or statements from parse()).

    `schema` maps table names ("schema.table", or exact (schema, table) tuples) to their
    column names, in order; it expands `SELECT *` and places unqualified columns. `target`
    names the table a bare query defines (a view whose definition is only its SELECT).
    """
    read = dialect_name(dialect)
    statements = parse(sql, dialect) if isinstance(sql, str) else sql
    mapping = _mapping(schema or {}, read, default_schema)
    result = Lineage()
    for statement in statements:
        result.statements += 1
        _statement(statement.copy(), read, default_schema, mapping, target, result)
    return result


def _mapping(schema, read, default_schema):
    """{table: [columns]} -> the nested {db: {table: {column: type}}} sqlglot reads. A string
    key ("schema.table") is normalised like the SQL's names; a tuple key ((schema, table))
    and its columns are taken as written, the way the catalog stores them."""
    nested = {}
    strategy = Dialect.get_or_raise(read).NORMALIZATION_STRATEGY
    insensitive = strategy == NormalizationStrategy.CASE_INSENSITIVE
    for key, columns in schema.items():
        if isinstance(key, tuple):
            db, name = (key[-2] if len(key) > 1 else "") or default_schema, key[-1]
            cols = list(columns)
            if insensitive:  # SQLite matches any case; its unquoted names fold to lower
                cols = [c.lower() for c in cols]
        else:
            table = normalize_identifiers(exp.to_table(key, dialect=read), dialect=read)
            db, name = table.db or default_schema, table.name
            cols = [normalize_identifiers(exp.to_identifier(c), dialect=read).name for c in columns]
        nested.setdefault(db, {})[name] = dict.fromkeys(cols, "UNKNOWN")
    return nested


def _statement(node, read, default_schema, mapping, target, result):
    with_ = node.args.get("with_")
    into = node.args.get("into") if isinstance(node, exp.Select) else None
    if into is not None and isinstance(into.this, exp.Table):  # SELECT ... INTO new_table
        into.pop()
        _query(node, into.this, None, read, default_schema, mapping, result)
    elif isinstance(node, exp.Query) and not target:
        _query(node, None, None, read, default_schema, mapping, result)
    elif isinstance(node, exp.Query):
        table = target if isinstance(target, exp.Table) else exp.to_table(target, dialect=read)
        _query(node, table, None, read, default_schema, mapping, result)
    elif isinstance(node, exp.Create):
        query = node.expression
        if isinstance(query, exp.Subquery):  # CREATE VIEW v AS (SELECT ...)
            query = query.unnest()
        if isinstance(query, exp.Query):
            table, columns = _target(node.this)
            _query(query, table, columns, read, default_schema, mapping, result)
    elif isinstance(node, exp.Insert):
        table, columns = _target(node.this)
        query = node.expression
        if isinstance(query, exp.Subquery):
            query = query.unnest()
        if with_ is not None and isinstance(query, exp.Query) and not query.args.get("with_"):
            query.set("with_", with_)
        if isinstance(query, exp.Query):
            _query(query, table, columns, read, default_schema, mapping, result)
        elif table is not None:
            result.targets.add(table_name(table, default_schema))
    elif isinstance(node, exp.Update):
        _update(node, read, default_schema, mapping, result)
    elif isinstance(node, exp.Merge):
        _merge(node, read, default_schema, mapping, result)
    elif isinstance(node, exp.Command) and node.name.upper() == "REPLACE":
        # MySQL's REPLACE INTO ... SELECT writes like INSERT; sqlglot keeps it as a command.
        text = node.expression.name if isinstance(node.expression, exp.Literal) else ""
        for statement in parse(f"INSERT {text}", read or "ansi"):
            _statement(statement, read, default_schema, mapping, target, result)
    else:
        result.skipped.append(node.sql(dialect=read)[:80])


def _target(this):
    """The table a statement writes, and its column list when the statement names one."""
    if isinstance(this, exp.Schema):
        return this.this, [
            c.name for c in this.expressions if isinstance(c, exp.Identifier | exp.ColumnDef)
        ]
    if isinstance(this, exp.Table):
        return this, None
    return None, None


def _update(node, read, default_schema, mapping, result):
    """UPDATE t SET c = e ... FROM s: the SET expressions read from t, s and their joins."""
    target = node.this
    select = exp.Select().from_(target.copy())
    from_ = node.args.get("from_")
    if from_ is not None:
        first = from_.this.copy()
        joins = first.args.get("joins") or []
        first.set("joins", None)
        select = select.join(first, join_type="cross")
        for join in joins:
            select = select.join(join)
    if node.args.get("where") is not None:
        select.set("where", node.args["where"].copy())
    _assignments(node.expressions, target, select, read, default_schema, mapping, result)


def _merge(node, read, default_schema, mapping, result):
    """MERGE INTO t USING s ON ...: the UPDATE SET and INSERT VALUES expressions read s
    (and t)."""
    target = node.this
    select = exp.Select().from_(target.copy()).join(node.args["using"].copy(), join_type="cross")
    if node.args.get("with_") is not None:
        select.set("with_", node.args["with_"].copy())
    assignments = []
    for when in node.args["whens"].expressions:
        then = when.args.get("then")
        if isinstance(then, exp.Update):
            assignments.extend(then.expressions)
        elif isinstance(then, exp.Insert) and isinstance(then.expression, exp.Tuple):
            columns = then.this.expressions if isinstance(then.this, exp.Tuple) else []
            values = then.expression.expressions
            if not columns:
                known = mapping.get(target.db or default_schema, {}).get(target.name, {})
                columns = [exp.column(c) for c in known]
            assignments.extend(
                exp.EQ(this=c.copy(), expression=v.copy())
                for c, v in zip(columns, values, strict=False)
            )
    _assignments(assignments, target, select, read, default_schema, mapping, result)


def _assignments(assignments, target, select, read, default_schema, mapping, result):
    columns = []
    for index, assignment in enumerate(assignments):
        if isinstance(assignment, exp.EQ) and isinstance(assignment.this, exp.Column):
            columns.append(assignment.this.name)
            select = select.select(exp.alias_(assignment.expression.copy(), f"_c{index}"))
    target_table = target.copy()
    target_table.set("alias", None)
    target_table.set("joins", None)
    name = table_name(target_table, default_schema)
    result.targets.add(name)
    if not columns:
        return
    _query(select, target_table, columns, read, default_schema, mapping, result)
    # An UPDATE or MERGE reads the rows it changes; that is not lineage into the table.
    result.sources.discard(name)


def _query(query, target, columns, read, default_schema, mapping, result):
    """Record the lineage of `query` written into `target` (a Table node, or None)."""
    root = _qualified_scope(query, read, default_schema, mapping)
    target_name = table_name(target, default_schema) if target is not None else ""
    if target_name:
        result.targets.add(target_name)
    for scope in root.traverse():
        for source in scope.sources.values():
            if isinstance(source, exp.Table) and source.name:
                result.sources.add(table_name(source, default_schema))
    tracer = _Tracer(root, read, default_schema, result)
    names = _output_names(root)
    if columns is None and target is not None:
        known = mapping.get(target.db or default_schema, {}).get(target.name)
        # INSERT without a column list fills the table's columns in order.
        positional = "*" not in names and len(known or ()) == len(names)
        if known and positional and not isinstance(query.parent, exp.Create):
            columns = list(known)
    for index, name in enumerate(names):
        if name == "*":
            tracer.star(root)
            continue
        out = columns[index] if columns and index < len(columns) else name
        sources, transformations = tracer.output(root, index)
        qualified_target = f"{target_name}.{out}" if target_name else out
        result.add_column(qualified_target, sources, transformations[0] if transformations else "")


def _qualified_scope(query, read, default_schema, mapping):
    """The query's root scope once its tables and columns are qualified. Without the
    schemas of every table, sqlglot cannot place some unqualified columns; the tables are
    then qualified alone and each column is placed by the tracer where it can be."""
    options = {
        "dialect": read,
        "db": default_schema or None,
        "schema": MappingSchema(mapping, dialect=read, normalize=False) if mapping else None,
        "validate_qualify_columns": False,
        "quote_identifiers": False,
        "identify": False,
    }
    try:
        return build_scope(qualify(query.copy(), **options))
    except SqlglotError:
        pass
    try:
        return build_scope(qualify(query, qualify_columns=False, **options))
    except SqlglotError as exc:
        raise SqlError(f"cannot resolve the names in the query: {exc}") from exc


def _branches(scope):
    """The SELECTs whose outputs are the scope's outputs: each side of a UNION, the query
    inside a LATERAL."""
    if scope.set_operation_scopes:
        return [b for s in scope.set_operation_scopes for b in _branches(s)]
    if isinstance(scope.expression, exp.Lateral):
        inner = [s for s in scope.sources.values() if isinstance(s, Scope)]
        if inner:
            return _branches(inner[0])
    return [scope]


def _output_names(scope):
    select = _branches(scope)[0].expression
    if not isinstance(select, exp.Select):
        return []
    return [
        "*"
        if isinstance(s, exp.Star) or (isinstance(s, exp.Column) and s.is_star)
        else s.alias_or_name
        for s in select.selects
    ]


def _plain(expression):
    return isinstance(expression, exp.Column) and not expression.is_star


class _Tracer:
    """Follows an output column of a scope down to the physical columns it is made of."""

    def __init__(self, root, read, default_schema, result):
        self.read, self.default_schema, self.result = read, default_schema, result
        self.owner, self.scopes = {}, {}
        for scope in root.traverse():
            self.scopes[id(scope.expression)] = scope
            for column in scope.columns:  # innermost scope first
                self.owner.setdefault(id(column), scope)
        self.memo = {}

    def output(self, scope, index, stack=()):
        key = (id(scope), index)
        if key in self.memo:
            return self.memo[key]
        if key in stack:  # a recursive CTE reading itself
            return set(), []
        sources, transformations = set(), []
        for branch in _branches(scope):
            select = branch.expression
            if not isinstance(select, exp.Select) or index >= len(select.selects):
                continue
            expression = select.selects[index].unalias()
            if not _plain(expression):
                transformations.append(expression.sql(dialect=self.read))
            for node in expression.walk(prune=lambda n: isinstance(n, exp.Query)):
                if isinstance(node, exp.Query):
                    # A scalar subquery gives its one output, not the columns it filters on.
                    sub = self.scopes.get(
                        id(node.unnest() if isinstance(node, exp.Subquery) else node)
                    )
                    if sub is None:
                        continue
                    found, inner = self.output(sub, 0, (*stack, key))
                elif isinstance(node, exp.Column) and not node.is_star:
                    owner = self.owner.get(id(node), branch)
                    found, inner = self.column(node, owner, (*stack, key))
                else:
                    continue
                sources |= found
                transformations.extend(inner)
        self.memo[key] = (sources, transformations)
        return sources, transformations

    def column(self, column, scope, stack):
        """Physical columns behind one column reference seen in `scope`."""
        alias, name, start = column.table, column.name, scope
        while scope is not None and alias not in scope.sources:
            scope = scope.parent
        if scope is None:
            if not alias:
                only = self._only_source(start)
                if only is not None:
                    return self._from_source(only, name, stack)
            self.result.unresolved.add(column.sql(dialect=self.read))
            return set(), []
        return self._from_source(scope.sources[alias], name, stack)

    def _only_source(self, scope):
        """The one table or subquery a scope selects from, if it has only one."""
        if scope is None:
            return None
        selected = scope.selected_sources
        if len(selected) == 1:
            return next(iter(selected.values()))[1]
        return None

    def _from_source(self, source, name, stack):
        if isinstance(source, exp.Table):
            return {f"{table_name(source, self.default_schema)}.{name}"}, []
        if isinstance(source, Scope):
            names = _output_names(source)
            if name in names:
                return self.output(source, names.index(name), stack)
            if "*" in names:  # SELECT * over a table the schema mapping does not know
                inner = self._only_source(_branches(source)[0])
                if inner is not None:
                    return self._from_source(inner, name, stack)
        self.result.unresolved.add(name)
        return set(), []

    def star(self, scope):
        """An unexpanded `*`: the tables whose columns it stands for are not known."""
        for branch in _branches(scope):
            for source in branch.sources.values():
                if isinstance(source, exp.Table):
                    self.result.unresolved.add(f"{table_name(source, self.default_schema)}.*")
