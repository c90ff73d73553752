import json
import re
import sqlite3
import time
from urllib.parse import quote

from .base import COMMON_FIELDS, first_line, kind_from_text
from .guard import check_sqlite_path
from .metadata import TableMeta
from .sql import SQLConnector, fetch

LIST_TABLES = r"""
SELECT 'main', name, type FROM sqlite_master
WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
"""
# A foreign key that names no column points at the parent's primary key.
DETAILS = """
SELECT m.name, m.type, m.sql, p.cid, p.name, p.type, p."notnull", p.dflt_value, p.pk,
  f."table", coalesce(f."to", pp.name)
FROM sqlite_master m
JOIN pragma_table_info(m.name) p
LEFT JOIN pragma_foreign_key_list(m.name) f ON f."from" = p.name
LEFT JOIN pragma_table_info(f."table") pp ON f."to" IS NULL AND pp.pk = f.seq + 1
WHERE m.type IN ('table', 'view') AND m.name IN (SELECT value FROM json_each(?))
ORDER BY m.name, p.cid, f.id
"""
_IDENT = r'(?:"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[\w$]+)'
VIEW_HEAD = re.compile(
    rf"^\s*CREATE\s+(?:TEMP(?:ORARY)?\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    rf"{_IDENT}(?:\s*\.\s*{_IDENT})?\s*(?:\([^)]*\)\s*)?AS\s+",
    re.IGNORECASE,
)


class SQLiteConnector(SQLConnector):
    kind = "sqlite"
    default_port = None
    sqlalchemy_url = "sqlite://"
    per_schema = False
    option_fields = {k: v for k, v in COMMON_FIELDS.items() if k != "tls_ca"}
    public_options = frozenset(option_fields)
    tls_modes = ("disable",)

    def resolve(self):
        self.address = check_sqlite_path(self.spec.database, self.policy)
        return self.address

    def open(self, target, stack):
        conn = sqlite3.connect(
            f"file:{quote(target)}?mode=ro", uri=True, timeout=self.connect_timeout
        )
        self._limit_statements(conn)
        try:
            # Read the schema now so a file that is not a database fails here.
            conn.execute("PRAGMA schema_version").fetchone()
        except Exception:
            conn.close()
            raise
        return conn

    def _limit_statements(self, conn):
        """Interrupt any statement that runs longer than statement_timeout."""
        deadline = [0.0]

        def started(_sql):
            deadline[0] = time.monotonic() + self.statement_timeout

        conn.set_trace_callback(started)
        conn.set_progress_handler(lambda: time.monotonic() > deadline[0], 10_000)

    def where(self):
        return repr(self.spec.database)

    def server_version(self, conn):
        return sqlite3.sqlite_version

    def list_tables(self, conn, only):
        sql, params = LIST_TABLES, None
        if only:
            if only[0] != "main":
                return []
            sql += " AND name = ?"
            params = (only[1],)
        rows = fetch(conn, sql + " ORDER BY name", params)
        return [(TableMeta(schema, name, kind), None) for schema, name, kind in rows]

    def read_details(self, conn, tables, keys, whole_schema):
        names = json.dumps([t.name for t in tables])
        table_rows, columns, keys = {}, [], []
        for row in fetch(conn, DETAILS, (names,)):
            table, kind, sql, cid, column, native, notnull, default, pk, parent, parent_column = row
            if table not in table_rows:
                view = VIEW_HEAD.sub("", sql or "", count=1) if kind == "view" else None
                table_rows[table] = ("main", table, None, None, None, view, None)
            columns.append(
                ("main", table, column, cid + 1, native, not (notnull or pk), default, "")
            )
            if pk:
                keys.append(("main", table, column, "p", None, None, None))
            if parent:
                keys.append(("main", table, column, "f", "main", parent, parent_column))
        keys.sort(key=lambda key: key[3] != "p")
        return list(table_rows.values()), columns, keys

    def classify(self, exc):
        detail = first_line(exc)
        if detail.startswith("no such table"):
            return "not_found", detail
        if "not a database" in detail or "malformed" in detail:
            return "other", f"'{self.spec.database}' is not an SQLite database ({detail})"
        if detail == "interrupted":
            return "timeout", f"statement ran longer than {self.statement_timeout:g}s"
        return kind_from_text(detail), detail
