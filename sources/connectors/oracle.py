import threading

import oracledb

from .base import ConnectorError, first_line, kind_from_text
from .metadata import TableMeta
from .sql import SQLConnector, fetch

AUTH_CODES = {1017, 1005, 28000, 28001, 1045, 1031}
NOT_FOUND = {"DPY-6001", "DPY-6003", "ORA-12514", "ORA-12505", "ORA-00942"}
TIMEOUT_CODES = {"DPY-4024", "ORA-03156", "ORA-01013"}
INVALID_IDENTIFIER = 904

OWNERS = "SELECT username FROM all_users WHERE oracle_maintained = 'N'"
# Before 12c ALL_USERS cannot say which accounts Oracle maintains.
OLD_OWNERS = """
SELECT username FROM all_users WHERE username NOT IN (
  'ANONYMOUS', 'APEX_PUBLIC_USER', 'APPQOSSYS', 'AUDSYS', 'CTXSYS', 'DBSFWUSER', 'DBSNMP', 'DIP',
  'DVF', 'DVSYS', 'EXFSYS', 'FLOWS_FILES', 'GGSYS', 'GSMADMIN_INTERNAL', 'GSMCATUSER', 'GSMUSER',
  'LBACSYS', 'MDDATA', 'MDSYS', 'MGMT_VIEW', 'OJVMSYS', 'OLAPSYS', 'ORACLE_OCM', 'ORDDATA',
  'ORDPLUGINS', 'ORDSYS', 'OUTLN', 'REMOTE_SCHEDULER_AGENT', 'SI_INFORMTN_SCHEMA',
  'SPATIAL_CSW_ADMIN_USR', 'SPATIAL_WFS_ADMIN_USR', 'SYS', 'SYS$UMF', 'SYSBACKUP', 'SYSDG',
  'SYSKM', 'SYSMAN', 'SYSRAC', 'SYSTEM', 'TSMSYS', 'WMSYS', 'XDB', 'XS$NULL')
"""
LIST_TABLES = """
SELECT owner, name, kind, num_rows FROM (
  SELECT t.owner, t.table_name AS name, 'table' AS kind, t.num_rows FROM all_tables t
  WHERE t.nested = 'NO' AND t.secondary = 'N' AND t.dropped = 'NO'
    AND (t.iot_type IS NULL OR t.iot_type = 'IOT')
    AND NOT EXISTS (
      SELECT 1 FROM all_mviews m WHERE m.owner = t.owner AND m.mview_name = t.table_name)
  UNION ALL
  SELECT v.owner, v.view_name, 'view', NULL FROM all_views v
  UNION ALL
  SELECT m.owner, m.mview_name, 'materialized_view', t.num_rows FROM all_mviews m
  LEFT JOIN all_tables t ON t.owner = m.owner AND t.table_name = m.mview_name
)
WHERE owner IN ({owners})
"""
COMMENTS = """
SELECT owner, table_name, comments FROM all_tab_comments
WHERE owner = :owner AND comments IS NOT NULL{names}
"""
VIEWS = "SELECT owner, view_name, text FROM all_views WHERE owner = :owner{names}"
MVIEWS = "SELECT owner, mview_name, query FROM all_mviews WHERE owner = :owner{names}"
COLUMNS = """
SELECT c.owner, c.table_name, c.column_name, c.column_id, c.data_type, c.data_length,
  c.char_length, c.data_precision, c.data_scale, c.nullable, c.data_default, cc.comments
FROM all_tab_columns c
LEFT JOIN all_col_comments cc
  ON cc.owner = c.owner AND cc.table_name = c.table_name AND cc.column_name = c.column_name
WHERE c.owner = :owner{names}
"""
KEYS = """
SELECT c.owner, c.table_name, cc.column_name, lower(c.constraint_type), r.owner, r.table_name,
  rc.column_name
FROM all_constraints c
JOIN all_cons_columns cc
  ON cc.owner = c.owner AND cc.constraint_name = c.constraint_name AND cc.table_name = c.table_name
LEFT JOIN all_constraints r ON r.owner = c.r_owner AND r.constraint_name = c.r_constraint_name
LEFT JOIN all_cons_columns rc
  ON rc.owner = r.owner AND rc.constraint_name = r.constraint_name AND rc.position = cc.position
WHERE c.owner = :owner AND c.constraint_type IN ('P', 'R'){names}
ORDER BY c.constraint_type, c.table_name, c.constraint_name, cc.position
"""
CHAR_TYPES = {"CHAR", "NCHAR", "VARCHAR2", "NVARCHAR2", "VARCHAR"}


def within(seconds, fn, **kwargs):
    """Run fn in a worker thread: a thin-mode handshake has no read timeout of its own."""
    outcome = {}

    def run():
        try:
            outcome["value"] = fn(**kwargs)
        except BaseException as exc:  # handed to the waiting caller
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="steward-oracle-connect", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError("no answer from the server in time")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class OracleConnector(SQLConnector):
    kind = "oracle"
    default_port = 1521
    sqlalchemy_url = "oracle+oracledb://"
    # Thin mode matches certificates against the address it dials, which is the checked IP.
    tls_modes = ("disable", "require", "verify-ca")

    def open(self, target, stack):
        if not oracledb.is_thin_mode():
            raise ConnectorError("other", "python-oracledb is in thick mode; thin mode is required")
        params = {
            "user": self.spec.username,
            "password": self.spec.password,
            "host": target,
            "port": self.port,
            "service_name": self.spec.database,
            "tcp_connect_timeout": self.connect_timeout,
            "retry_count": 0,
        }
        if self.tls != "disable":
            params.update(
                protocol="tcps", ssl_context=self.ssl_context(), ssl_server_dn_match=False
            )
        conn = within(self.connect_timeout, oracledb.connect, **params)
        conn.call_timeout = self.timeout_ms
        return conn

    def server_version(self, conn):
        return conn.version

    def list_tables(self, conn, only):
        extra, params = "", None
        if only:
            extra, params = (
                " AND owner = :owner AND name = :name",
                {"owner": only[0], "name": only[1]},
            )
        extra += " ORDER BY owner, name"
        try:
            found = fetch(conn, LIST_TABLES.format(owners=OWNERS) + extra, params)
        except oracledb.DatabaseError as exc:
            if getattr(exc.args[0], "code", 0) != INVALID_IDENTIFIER:
                raise
            found = fetch(conn, LIST_TABLES.format(owners=OLD_OWNERS) + extra, params)
        return [(TableMeta(owner, name, kind, row_count=n), None) for owner, name, kind, n in found]

    def read_details(self, conn, tables, keys, whole_schema):
        params = {"owner": tables[0].schema}
        # Pairs dodge the 1,000-item limit of a plain IN list.
        pairs = ", ".join(f"(:n{i}, 0)" for i in range(len(tables)))
        if not whole_schema:
            params.update({f"n{i}": t.name for i, t in enumerate(tables)})

        def rows(sql, column):
            names = "" if whole_schema else f" AND ({column}, 0) IN ({pairs})"
            return fetch(conn, sql.format(names=names), params)

        table_rows = [
            (o, n, text, None, None, None, None) for o, n, text in rows(COMMENTS, "table_name")
        ]
        kinds = {t.kind for t in tables}
        if "view" in kinds:
            table_rows += [
                (o, n, None, None, None, text, None) for o, n, text in rows(VIEWS, "view_name")
            ]
        if "materialized_view" in kinds:
            table_rows += [
                (o, n, None, None, None, text, None) for o, n, text in rows(MVIEWS, "mview_name")
            ]
        columns = [
            (o, t, name, position, native_type(*parts), nullable == "Y", default, comment)
            for o, t, name, position, *parts, nullable, default, comment in rows(
                COLUMNS, "c.table_name"
            )
        ]
        return table_rows, columns, rows(KEYS, "c.table_name")

    def limit_clause(self, limit):
        return f"FETCH FIRST {int(limit)} ROWS ONLY"

    def classify(self, exc):
        error = exc.args[0] if exc.args else None
        code = getattr(error, "code", 0)
        full_code = getattr(error, "full_code", "")
        lines = [line for line in str(exc).splitlines() if not line.startswith("Help:")]
        if full_code == "DPY-6005" and len(lines) > 1:
            lines = lines[1:]  # the first line only carries a connection id
        detail = first_line("\n".join(lines))
        if code in AUTH_CODES:
            return "auth", detail
        if full_code in NOT_FOUND or f"ORA-{code:05}" in NOT_FOUND:
            return "not_found", detail
        if full_code in TIMEOUT_CODES or isinstance(exc, TimeoutError):
            return "timeout", detail
        cause = exc.__cause__
        if isinstance(cause, ConnectionRefusedError):
            return "refused", detail
        return kind_from_text(str(exc) + " " + str(cause or "")), detail


def native_type(data_type, length, char_length, precision, scale) -> str:
    """The type as Oracle writes it in DDL, from ALL_TAB_COLUMNS' parts."""
    if data_type == "NUMBER":
        if precision is None:
            return "NUMBER" if scale is None else f"NUMBER(*,{scale})"
        return f"NUMBER({precision})" if not scale else f"NUMBER({precision},{scale})"
    if data_type == "FLOAT" and precision:
        return f"FLOAT({precision})"
    if data_type in CHAR_TYPES:
        return f"{data_type}({char_length or length})"
    if data_type == "RAW":
        return f"RAW({length})"
    return data_type
