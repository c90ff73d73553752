"""Introspection shared by the SQL kinds: choosing tables by the rules, reading their details in
bulk, building TableMeta from catalog rows, and sampling values.

A kind adds its catalog queries through two methods:

    list_tables(conn, only) -> list[(TableMeta, key)]
        every non-system table and view with schema, name and kind (and what the listing gives
        for free), each with the kind's own key for finding it again (or None); with
        `only` = (schema, name), at most that one.
    read_details(conn, tables, keys, whole_schema) -> (table_rows, column_rows, key_rows)
        table_rows:  (schema, name, comment, row_count, size_bytes, view_definition, properties)
        column_rows: (schema, table, column, position, native_type, nullable, default, comment)
        key_rows:    (schema, table, column, "p" or "f", ref_schema, ref_table, ref_column)
        None in a table row leaves that field as it is; key rows come primary keys first, then
        each column's foreign keys in the order the first one should win.
"""

from collections import Counter
from functools import cache

from .base import Connector
from .metadata import ColumnMeta, TableMeta, collect_samples, normalize_type


class SQLConnector(Connector):
    sqlalchemy_url = ""
    per_schema = True

    def list_tables(self, conn, only) -> list[tuple[TableMeta, object]]:
        raise NotImplementedError

    def read_details(self, conn, tables: list[TableMeta], keys: list, whole_schema: bool):
        raise NotImplementedError

    def read_catalog(self, conn, rules, progress, only):
        listed = self.list_tables(conn, only)
        chosen = [(t, key) for t, key in listed if only or rules.allows(t.schema, t.name, t.kind)]
        total = len(chosen)
        progress(0, total, f"{total} of {len(listed)} tables and views chosen")
        in_schema = Counter(t.schema for t, _ in listed)
        batches: dict[str, list[tuple[TableMeta, object]]] = {}
        for table, key in chosen:
            batches.setdefault(table.schema if self.per_schema else "", []).append((table, key))
        done = 0
        for schema, batch in batches.items():
            tables, keys = [t for t, _ in batch], [key for _, key in batch]
            whole = bool(schema) and not only and len(batch) == in_schema[schema]
            fill(self.kind, tables, *self.read_details(conn, tables, keys, whole))
            done += len(batch)
            progress(done, total, f"read {schema or 'all schemas'}")
        return [table for table, _ in chosen]

    def read_sample(self, conn, table, columns, limit):
        quote = self.quote
        sql = (
            f"SELECT {', '.join(map(quote, columns))} "  # noqa: S608 - identifiers quoted by the dialect
            f"FROM {quote(table.schema)}.{quote(table.name)} {self.limit_clause(limit)}"
        )
        return collect_samples(columns, fetch(conn, sql), limit)

    def limit_clause(self, limit: int) -> str:
        return f"LIMIT {int(limit)}"

    def quote(self, identifier: str) -> str:
        return _preparer(self.sqlalchemy_url).quote_identifier(identifier)

    def engine(self, conn):
        """An SQLAlchemy engine whose one connection is `conn`, opened by connect() (guarded)."""
        from sqlalchemy import create_engine
        from sqlalchemy.pool import StaticPool

        return create_engine(self.sqlalchemy_url, creator=lambda: conn, poolclass=StaticPool)


@cache
def _preparer(url: str):
    from sqlalchemy.engine import make_url

    return make_url(url).get_dialect()().identifier_preparer


def fetch(conn, sql: str, params=None) -> list:
    """Rows of one query through a plain DB-API cursor."""
    cursor = conn.cursor()
    try:
        if params:
            cursor.execute(sql, params)
        else:
            cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


def stream(conn, sql: str, params=None):
    """Rows of one query, one at a time: large results never sit in memory as Python rows."""
    cursor = conn.cursor()
    try:
        if params:
            cursor.execute(sql, params)
        else:
            cursor.execute(sql)
        yield from cursor
    finally:
        cursor.close()


def fill(family: str, tables: list[TableMeta], table_rows, column_rows, key_rows):
    """Put catalog rows (shapes in the module docstring) into `tables`."""
    by_name = {(t.schema, t.name): t for t in tables}
    for schema, name, comment, row_count, size, definition, properties in table_rows:
        table = by_name.get((schema, name))
        if table is None:
            continue
        if comment is not None:
            table.comment = comment
        if row_count is not None and row_count >= 0:
            table.row_count = int(row_count)
        if size is not None:
            table.size_bytes = int(size)
        if definition is not None:
            table.view_definition = definition.strip().removesuffix(";").rstrip()
        table.properties.update(properties or {})
    columns: dict[tuple[str, str], dict[str, ColumnMeta]] = {key: {} for key in by_name}
    natives: dict[str, str] = {}
    for schema, name, column, position, native, nullable, default, comment in column_rows:
        seen = columns.get((schema, name))
        if seen is None or column in seen:
            continue
        native = natives.setdefault(native, native)
        if default is not None:
            default = default.strip()
        data_type = normalize_type(family, native)
        seen[column] = ColumnMeta(
            column, position, data_type, native, bool(nullable), default, False, None, comment or ""
        )
    for key, table in by_name.items():
        # Positions count the columns there are now (PostgreSQL keeps gaps of dropped ones).
        table.columns = sorted(columns[key].values(), key=lambda c: c.position)
        for position, column in enumerate(table.columns, 1):
            column.position = position
    for schema, name, column, kind, ref_schema, ref_table, ref_column in key_rows:
        meta = columns.get((schema, name), {}).get(column)
        if meta is None:
            continue
        if kind == "p":
            meta.is_primary_key = True
        elif meta.foreign_key is None and ref_table:
            meta.foreign_key = f"{ref_schema}.{ref_table}.{ref_column}"
