import os

import psycopg

from .base import Connector, first_line, kind_from_text

# A path that can never exist, so libpq never falls back to a ~/.pgpass password.
NO_PASSFILE = os.path.join(os.devnull, "pgpass")


class PostgreSQLConnector(Connector):
    kind = "postgresql"
    default_port = 5432

    def open(self, target, stack):
        params = {
            "host": self.spec.host,
            "hostaddr": target,
            "port": self.port,
            "dbname": self.spec.database or None,
            "user": self.spec.username,
            "password": self.spec.password,
            "connect_timeout": self.connect_timeout_int,
            "sslmode": self.tls,
            "gssencmode": "disable",
            "passfile": NO_PASSFILE,
            "options": f"-c statement_timeout={self.timeout_ms}",
            "application_name": "steward",
        }
        if self.tls in ("verify-ca", "verify-full"):
            system = "system" if psycopg.pq.version() >= 160000 else None
            params["sslrootcert"] = self.ca_file(stack) or system
        return psycopg.connect(**{k: v for k, v in params.items() if v is not None})

    def server_version(self, conn):
        return conn.execute("SHOW server_version").fetchone()[0]

    def classify(self, exc):
        text = str(exc)
        detail = first_line(text.rsplit("failed: ", 1)[-1]).replace("FATAL:", "").strip()
        state = getattr(exc, "sqlstate", None) or ""
        if state in ("28P01", "28000") or "authentication failed" in detail:
            return "auth", detail
        if state == "3D000" or ("database" in detail and "does not exist" in detail):
            return "not_found", detail
        if ("role" in detail and "does not exist" in detail) or "pg_hba.conf" in detail:
            return "auth", detail
        if state == "57014":
            return "timeout", detail
        return kind_from_text(text), detail
