import sqlite3
import time
from urllib.parse import quote

from .base import COMMON_FIELDS, Connector, first_line, kind_from_text
from .guard import check_sqlite_path


class SQLiteConnector(Connector):
    kind = "sqlite"
    default_port = None
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

    def classify(self, exc):
        detail = first_line(exc)
        if "not a database" in detail or "malformed" in detail:
            return "other", f"'{self.spec.database}' is not an SQLite database ({detail})"
        if detail == "interrupted":
            return "timeout", f"statement ran longer than {self.statement_timeout:g}s"
        return kind_from_text(detail), detail
