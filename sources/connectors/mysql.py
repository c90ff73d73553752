import pymysql

from .base import first_line, kind_from_text
from .metadata import TableMeta
from .sql import SQLConnector, fetch

AUTH_ERRORS = {1044, 1045, 1698, 1251, 1142, 1143}
NOT_FOUND_ERRORS = {1049, 1146}
TIMEOUT_ERRORS = {1317, 1969, 3024}
KINDS = {"BASE TABLE": "table", "SYSTEM VERSIONED": "table", "VIEW": "view"}

LIST_TABLES = """
SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES
WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
  AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'VIEW')
"""
TABLE_DETAILS = """
SELECT t.TABLE_SCHEMA, t.TABLE_NAME, IF(t.TABLE_TYPE = 'VIEW', '', t.TABLE_COMMENT),
  t.TABLE_ROWS, t.DATA_LENGTH + t.INDEX_LENGTH, v.VIEW_DEFINITION, t.ENGINE
FROM information_schema.TABLES t
LEFT JOIN information_schema.VIEWS v
  ON v.TABLE_SCHEMA = %s AND v.TABLE_SCHEMA = t.TABLE_SCHEMA AND v.TABLE_NAME = t.TABLE_NAME
WHERE t.TABLE_SCHEMA = %s
"""
COLUMNS = """
SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE = 'YES',
  COLUMN_DEFAULT, COLUMN_COMMENT, EXTRA
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s
"""
KEYS = """
SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, IF(CONSTRAINT_NAME = 'PRIMARY', 'p', 'f'),
  REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = %s AND (CONSTRAINT_NAME = 'PRIMARY' OR REFERENCED_TABLE_NAME IS NOT NULL)
"""
KEYS_ORDER = " ORDER BY CONSTRAINT_NAME <> 'PRIMARY', TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION"


class MySQLConnector(SQLConnector):
    kind = "mysql"
    default_port = 3306
    sqlalchemy_url = "mysql+pymysql://"

    def open(self, target, stack):
        return pymysql.connect(
            host=target,
            port=self.port,
            user=self.spec.username or None,
            password=self.spec.password,
            database=self.spec.database or None,
            connect_timeout=self.connect_timeout,
            read_timeout=self.statement_timeout,
            write_timeout=self.statement_timeout,
            ssl=self.ssl_context(),
            ssl_disabled=self.tls == "disable",
            local_infile=False,
            charset="utf8mb4",
        )

    def server_version(self, conn):
        with conn.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            return cursor.fetchone()[0]

    def list_tables(self, conn, only):
        sql, params = LIST_TABLES, None
        if only:
            sql += " AND TABLE_SCHEMA = %s AND TABLE_NAME = %s"
            params = only
        rows = fetch(conn, sql + " ORDER BY 1, 2", params)
        return [(TableMeta(schema, name, KINDS[kind]), None) for schema, name, kind in rows]

    def read_details(self, conn, tables, keys, whole_schema):
        schema = tables[0].schema
        names, name_params = "", []
        if not whole_schema:
            names = f" AND {{}}TABLE_NAME IN ({', '.join(['%s'] * len(tables))})"
            name_params = [t.name for t in tables]
        table_rows = [
            (*row[:6], {"engine": row[6]} if row[6] else {})
            for row in fetch(
                conn, TABLE_DETAILS + names.format("t."), [schema, schema, *name_params]
            )
        ]
        columns = [
            (*row[:6], _default(row[6], row[8]), row[7])
            for row in fetch(conn, COLUMNS + names.format(""), [schema, *name_params])
        ]
        keys = fetch(conn, KEYS + names.format("") + KEYS_ORDER, [schema, *name_params])
        return table_rows, columns, keys

    def classify(self, exc):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        detail = first_line(exc.args[1] if len(exc.args) > 1 else exc)
        if code in AUTH_ERRORS:
            return "auth", detail
        if code in NOT_FOUND_ERRORS:
            return "not_found", detail
        if code in TIMEOUT_ERRORS:
            return "timeout", detail
        return kind_from_text(str(exc)), detail


def _default(default: str | None, extra: str) -> str | None:
    """MariaDB reports "no default" on a nullable column as the text NULL."""
    if default is None or default == "NULL":
        return "auto_increment" if "auto_increment" in (extra or "") else None
    return default
